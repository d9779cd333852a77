import dataclasses
import json
import shlex

import pytest

import config
import evaluation
import meta_classification
import ood_training
from src.errors import UserError

SCRIPTS = (ood_training, meta_classification, evaluation)


def parse(script, *argv):
    return config.parse_config(script.GROUPS, script.get_args_parser().parse_args(list(argv)))


def test_defaults_match_the_published_settings():
    cfg = parse(ood_training)
    assert cfg.model.MODEL == "DeepLabV3+_WideResNet38"
    assert (cfg.train.num_training_epochs, cfg.model.pareto_alpha, cfg.train.learning_rate) == (4, 0.9, 1e-5)
    assert (cfg.train.crop_size, cfg.train.batch_size, cfg.train.ood_subsampling_factor) == (480, 8, 0.1)
    cfg = parse(meta_classification)
    assert (cfg.evalset.VALSET, cfg.evalset.val_epoch, cfg.evalset.entropy_threshold) == ("LostAndFound", 4, 0.7)
    assert (cfg.oodmc.moment_num, cfg.oodmc.moment_order, cfg.oodmc.svm_points_num) == (128, 4, 500000)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_field_of_every_group_is_a_flag_that_round_trips(script):
    parser = script.get_args_parser()
    flags = {s for action in parser._actions for s in action.option_strings}
    for group in script.GROUPS.values():
        for f in dataclasses.fields(group):
            if f.name in getattr(script, "LEAVE_OUT", ()):
                assert f"--{f.name}" not in flags, f"{script.__name__} takes --{f.name}, which it leaves out"
                continue
            assert f"--{f.name}" in flags, f"{script.__name__} has no flag for {group.__name__}.{f.name}"


def test_short_flags_set_the_published_fields():
    cfg = parse(ood_training, "-train", "Cityscapes", "-model", "DualGCNNet_res50", "-epoch", "2", "-nepochs", "5",
                "-alpha", "0.5", "-lr", "1e-4", "-crop", "320")
    assert cfg.train.TRAINSET == "Cityscapes" and cfg.model.MODEL == "DualGCNNet_res50"
    assert (cfg.train.training_starting_epoch, cfg.train.num_training_epochs) == (2, 5)
    assert (cfg.model.pareto_alpha, cfg.train.learning_rate, cfg.train.crop_size) == (0.5, 1e-4, 320)
    cfg = parse(meta_classification, "-val", "Fishyscapes", "-epoch", "0", "-threshold", "0.5", "-prepare",
                "-segment", "-removal", "-moment", "-SVM", "--svm_points_num", "5e3")
    assert (cfg.evalset.VALSET, cfg.evalset.val_epoch, cfg.evalset.entropy_threshold) == ("Fishyscapes", 0, 0.5)
    assert cfg.meta.metaseg_prepare and cfg.meta.segment_search and cfg.meta.fp_removal
    assert cfg.meta.moment and cfg.meta.SVM and cfg.oodmc.svm_points_num == 5000
    cfg = parse(evaluation, "-pixel", "-segment", "-moment")
    assert cfg.stages.pixel_eval and cfg.stages.segment_eval and cfg.stages.moment


@pytest.mark.parametrize("argv, message", [
    (["-alpha", "1.5"], "--pareto_alpha must be [0.0, 1.0]"),
    (["-model", "ResNet9000"], "invalid choice: 'ResNet9000'"),
    (["-nepochs", "0"], "--num_training_epochs must be >= 1"),
    (["-lr", "nan"], "--learning_rate must be finite"),
    (["--batch_size", "2.5"], "--batch_size takes int values"),
    (["--no_such_flag"], "unrecognized arguments: --no_such_flag"),
])
def test_bad_values_are_argparse_errors_that_say_what_is_legal(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ood_training.get_args_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_flag_of_another_stage_is_refused(capsys):
    with pytest.raises(SystemExit):
        evaluation.get_args_parser().parse_args(["-lr", "0.1"])
    assert "unrecognized arguments" in capsys.readouterr().err


def test_paths_derive_from_the_roots():
    cfg = parse(meta_classification, "--data_root", "/d", "--io_root", "/o", "-val", "Fishyscapes",
                "--fs_split", "LostAndFound", "-epoch", "3", "-alpha", "0.8")
    assert cfg.paths.cityscapes == "/d/cityscapes" and cfg.paths.coco == "/d/COCO/2017"
    assert config.layout(cfg).checkpoint(3) == "/o/weights/entropy/DeepLabV3+_WideResNet38_epoch_3_alpha_0.8.pth"
    assert config.layout(cfg).checkpoint(0) == "/o/weights/DeepLabV3+_WideResNet38.pth"
    assert config.layout(cfg).run_dir(3) == "/o/Fishyscapes_LostAndFound/DeepLabV3+_WideResNet38_entropy_epoch_3_alpha_0.8"


def test_config_dict_is_plain_json():
    cfg = parse(evaluation)
    assert json.loads(json.dumps(cfg.to_dict()))["evalset"]["VALSET"] == "LostAndFound"
    assert "train" not in cfg.to_dict()


def test_the_entropy_threshold_is_refused_for_score_maps():
    # one name per meaning: -threshold is the entropy threshold of a checkpoint's segments, in [0, 1]
    with pytest.raises(UserError, match="-threshold 0.5 is the entropy threshold.*pass --score_threshold"):
        parse(meta_classification, "--scores_from", "maps", "-threshold", "0.5")
    cfg = parse(meta_classification, "--scores_from", "maps", "--score_threshold", "12.5")
    assert config.layout(cfg).scores_setting() == "t12.5" and config.layout(cfg).segments_dir(4).endswith("t0.7")


def test_rerun_hints_parse_back_to_the_settings_they_were_made_from():
    cfg = parse(evaluation, "-val", "LostAndFound", "--laf_split", "testNoKnown", "-epoch", "7",
                "--score_threshold", "-2.5", "--data_root", "my data", "--io_root", "out/io", "-model", "DualGCNNet_res50",
                "-alpha", "0.5", "--init_ckpt", "w/base line.pth", "--scores_from", "maps/a b", "--score_quantile", "0.9",
                "--device", "cpu", "--num_workers", "0")
    shared = ("paths", "run", "model", "evalset", "scores")
    hint = config.source_command(cfg, 4, "-segment -removal")
    back = parse(meta_classification, *shlex.split(hint)[2:])
    assert back.meta.segment_search and back.meta.fp_removal
    assert all(getattr(back, g) == getattr(cfg, g) for g in shared), hint
    back = parse(meta_classification, *shlex.split(config.stage_command(cfg, 0, "-prepare"))[2:])
    assert back.meta.metaseg_prepare and back.evalset.val_epoch == 0 and back.scores.scores_from == ""
    assert back.paths == cfg.paths and back.model == cfg.model and back.evalset.laf_split == "testNoKnown"
