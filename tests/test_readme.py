"""README.md and docs/ against the code: the settings table is config.py's, every command in their code blocks
runs a script that exists with flags that script's parser accepts, every link to a page of the repository leads
to a file, and the README starts with `make demo` and `make test`."""
import argparse
import dataclasses
import importlib
import re
import shlex
from pathlib import Path
from unittest import mock

import pytest

import config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = {path.relative_to(ROOT).as_posix(): path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
ENTRY_SCRIPTS = ("ood_training.py", "meta_classification.py", "evaluation.py")
PLACEHOLDER = re.compile(r"<[^<>\s]+>")
PYTHONS = ("python", "python3", "python3.11", ".venv/bin/python")


class ArgumentRejected(Exception):
    pass


class _ParserBuilt(Exception):
    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def code_blocks(markdown):
    return re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)


def commands(markdown):
    """(line, script, args) of every `python <script> ...` and `torchrun ... <script> ...` in the code blocks.

    Continuation lines are joined, comments dropped, leading VAR=value assignments skipped; `python -m`
    runs a module, not a script, and is left out.
    """
    found = []
    for block in code_blocks(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", tokens[0]):
                tokens = tokens[1:]
            if len(tokens) >= 2 and tokens[0] in PYTHONS and tokens[1] != "-m":
                found.append((line.strip(), tokens[1], tokens[2:]))
            elif tokens and tokens[0] == "torchrun":
                script = next((i for i, token in enumerate(tokens) if token.endswith(".py")), None)
                assert script is not None, f"torchrun line without a script: {line}"
                found.append((line.strip(), tokens[script], tokens[script + 1:]))
    return found


def script_parser(script):
    """The argparse parser of `script` (a path relative to the repository root).

    Entry scripts expose get_args_parser(); the preparation scripts build theirs inside main(), so main()
    runs until it parses and the parser is taken there, before any work is done.
    """
    module = importlib.import_module(".".join(Path(script).with_suffix("").parts))
    if hasattr(module, "get_args_parser"):
        return module.get_args_parser()
    if not hasattr(module, "main"):
        raise AssertionError(f"{script} takes flags in the README but has no argument parser")

    def capture(parser, *args, **kwargs):
        raise _ParserBuilt(parser)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture):
        try:
            module.main()
        except _ParserBuilt as built:
            return built.parser
    raise AssertionError(f"{script}: main() returned without parsing its arguments")


def check_command(script, args):
    """Parse `args` with the parser of `script`; raises ArgumentRejected with argparse's message on error.

    A placeholder value (`<E>`, `<DIR>`) stands for any legal value: given to a flag with a type, it becomes
    the flag's first choice or its default, so that it parses; other flags take it as written.
    """
    if not (ROOT / script).is_file():
        raise ArgumentRejected(f"{script} does not exist")
    if not args:
        return None
    parser = script_parser(script)

    def reject(message):
        raise ArgumentRejected(f"{script}: {message}")

    parser.error = reject
    args = list(args)
    for i, token in enumerate(args):
        if i > 0 and PLACEHOLDER.fullmatch(token):
            action = parser._option_string_actions.get(args[i - 1])
            if action is not None and action.type is not None:
                args[i] = str(action.choices[0] if action.choices else action.default)
    return parser.parse_args(args)


README_COMMANDS = commands(README)
DOC_COMMANDS = [(f"{page}: {line}", script, args) for page, text in PAGES.items() for line, script, args in commands(text)]


def test_settings_table_is_the_one_config_makes():
    match = re.search(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", PAGES["docs/settings.md"], flags=re.DOTALL)
    assert match, "docs/settings.md lacks the <!-- settings:begin --> / <!-- settings:end --> markers"
    assert match.group(1) == config.settings_markdown(), \
        "the settings table of docs/settings.md differs from config.settings_markdown(): paste `python config.py`"


def test_settings_table_has_a_row_per_setting_with_its_flags():
    rows = config.settings_markdown().splitlines()[2:]
    groups = (config.Paths, config.Run, config.Model, config.Training, config.EvalSet, config.MetaStages,
              config.EvalStages, config.Oodmc, config.ScoresFrom)
    fields = [(group.__name__, f) for group in groups for f in dataclasses.fields(group)]
    assert len(rows) == len(fields)
    for row, (group, f) in zip(rows, fields):
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert cells[0] == group and f"`--{f.name}`" in cells[1]
        assert all(f"`{flag}`" in cells[1] for flag in f.metadata["flags"])
    learning_rate = next(row for row in rows if "`--learning_rate`" in row)
    assert "`-lr`" in learning_rate and "`1e-05`" in learning_rate


def test_readme_starts_with_make_demo_and_make_test():
    first_lines = [line.strip() for line in README.splitlines()[:15]]
    demo = next((i for i, line in enumerate(first_lines) if line.startswith("make demo")), None)
    test = next((i for i, line in enumerate(first_lines) if line.startswith("make test")), None)
    assert demo is not None and test is not None and demo < test, \
        "README.md must show `make demo` then `make test` within its first 15 lines"


def test_readme_commands_every_stage_and_torchrun():
    scripts = {script for _, script, _ in README_COMMANDS}
    assert set(ENTRY_SCRIPTS) <= scripts
    assert {"preparation/prepare_cityscapes.py", "preparation/prepare_lost_and_found.py",
            "preparation/prepare_coco_segmentation.py", "src/dataset/cs_coco_embedding.py"} <= scripts
    torchrun = {script for line, script, _ in README_COMMANDS if line.startswith("torchrun")}
    assert {"ood_training.py", "meta_classification.py"} <= torchrun


@pytest.mark.parametrize("line, script, args", DOC_COMMANDS, ids=[line for line, _, _ in DOC_COMMANDS])
def test_documented_command_parses(line, script, args):
    try:
        check_command(script, args)
    except ArgumentRejected as error:
        pytest.fail(f"documented command `{line}`: {error}")


def test_readme_is_short_and_links_every_docs_page():
    assert len(README.splitlines()) <= 300
    for page in PAGES:
        if page.startswith("docs/"):
            assert f"]({page})" in README, f"README.md does not link {page}"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_links_to_repository_files_lead_to_files(page):
    base = (ROOT / page).parent
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", PAGES[page]):
        if "://" not in target:
            assert (base / target).exists(), f"{page} links {target}, which does not exist"


def test_command_extraction_joins_continuations_and_skips_what_is_no_script():
    markdown = ("text `python not_in_a_block.py`\n"
                "```\n"
                "make demo\n"
                "CUDA_VISIBLE_DEVICES=0,1 torchrun --nproc_per_node 2 ood_training.py --batch_size 4  # two GPUs\n"
                "python evaluation.py -val Fishyscapes \\\n"
                "    --fs_split Static\n"
                ".venv/bin/python -m pytest -q tests\n"
                "```\n")
    assert commands(markdown) == [
        ("CUDA_VISIBLE_DEVICES=0,1 torchrun --nproc_per_node 2 ood_training.py --batch_size 4  # two GPUs",
         "ood_training.py", ["--batch_size", "4"]),
        ("python evaluation.py -val Fishyscapes      --fs_split Static", "evaluation.py",
         ["-val", "Fishyscapes", "--fs_split", "Static"]),
    ]


@pytest.mark.parametrize("script, args, message", [
    ("ood_training.py", ["--no_such_flag"], "unrecognized arguments: --no_such_flag"),
    ("ood_training.py", ["-epoch", "two"], "--training_starting_epoch takes int values"),
    ("evaluation.py", ["-removal"], "unrecognized arguments: -removal"),
    ("meta_classification.py", ["-val", "Cityscapes"], "invalid choice: 'Cityscapes'"),
    ("preparation/prepare_cityscapes.py", ["--cityscapes_root", "x"], "unrecognized arguments"),
    ("src/dataset/cs_coco_embedding.py", ["--cs_per_coco", "many"], "invalid int value: 'many'"),
    ("preparation/no_such_script.py", [], "does not exist"),
])
def test_check_command_rejects_what_the_script_rejects(script, args, message):
    with pytest.raises(ArgumentRejected, match=re.escape(message)):
        check_command(script, args)


def test_check_command_accepts_placeholders_for_typed_values():
    args = check_command("meta_classification.py", ["-val", "<VALSET>", "-epoch", "<E>", "--io_root", "<DIR>"])
    assert (args.VALSET, args.val_epoch, args.io_root) == (config.VALSETS[0], 4, "./io")
    args = check_command("preparation/make_cropped_coco.py", ["--data_root", "<DIR>", "--min_area", "200"])
    assert (args.data_root, args.min_area) == ("<DIR>", 200)
    with pytest.raises(ArgumentRejected, match="unrecognized arguments: <DIR>"):
        check_command("preparation/prepare_cityscapes.py", ["<DIR>"])
