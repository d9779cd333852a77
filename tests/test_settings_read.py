"""Each entry script takes exactly the settings it reads: a flag it accepts but never reads would be silently
ignored. What a script reads is found in its source: `cfg.<group>.<field>` (also through a name bound to
`cfg.<group>`), a property of the group that reads fields, and the config.py functions the script calls."""
import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

import config

ROOT = Path(__file__).resolve().parents[1]
CONFIG_FUNCTIONS = {node.name: node for node in ast.parse((ROOT / "config.py").read_text()).body
                    if isinstance(node, ast.FunctionDef)}


def group_of(node, aliases):
    """The Config attribute (group) `node` stands for: cfg.<group> (also `cfg.<group> or its defaults`), or a name
    bound to one; else None."""
    if isinstance(node, ast.BoolOp):
        node = node.values[0]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "cfg":
        return node.attr
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    return None


def reads(tree):
    """{(group, attribute)} read in `tree`, and the config.py functions it calls."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
            pairs = zip(target.elts, value.elts) if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) \
                else [(target, value)]
            for name, value in pairs:
                group = group_of(value, {})
                if isinstance(name, ast.Name) and group is not None:
                    aliases[name.id] = group
    found, called = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            group = group_of(node.value, aliases)
            if group is not None:
                found.add((group, node.attr))
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "config":
                called.add(f.attr)
            if isinstance(f, ast.Name):
                called.add(f.id)
    return found, called & set(CONFIG_FUNCTIONS)


def property_fields(cls):
    """{property name: fields of cls it reads through self}."""
    out = {}
    for node in ast.walk(ast.parse(Path(config.__file__).read_text())):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    out[item.name] = {n.attr for n in ast.walk(item) if isinstance(n, ast.Attribute)
                                      and isinstance(n.value, ast.Name) and n.value.id == "self"}
    return out


def settings_read(script):
    module = importlib.import_module(script[:-3])
    found, todo = reads(ast.parse((ROOT / script).read_text()))
    done = set()
    while todo:  # config.py's helpers, and the helpers they call
        name = todo.pop()
        done.add(name)
        more, calls = reads(CONFIG_FUNCTIONS[name])
        found |= more
        todo |= calls - done
    for group, cls in module.GROUPS.items():
        for prop, fields in property_fields(cls).items():
            if (group, prop) in found:
                found |= {(group, f) for f in fields}
    return found


def settings_taken(script):
    module = importlib.import_module(script[:-3])
    dests = {action.dest for action in module.get_args_parser()._actions}
    return {(group, f.name) for group, cls in module.GROUPS.items() for f in dataclasses.fields(cls)
            if f.name in dests}


@pytest.mark.parametrize("script", ["ood_training.py", "meta_classification.py", "evaluation.py"])
def test_a_script_takes_exactly_the_settings_it_reads(script):
    unread = settings_taken(script) - settings_read(script)
    assert not unread, f"{script} takes flags it never reads: {sorted(unread)}"


def test_the_finder_sees_a_setting_read_through_an_alias_and_a_property():
    source = "def f(cfg):\n    o = cfg.oodmc\n    return o.moment_num, cfg.paths.cityscapes\n"
    found, _ = reads(ast.parse(source))
    assert ("oodmc", "moment_num") in found and ("paths", "cityscapes") in found
    assert property_fields(config.Paths)["cityscapes"] == {"data_root"}
