"""demo.py's plan: its training steps parse as ood_training.py's flags, join up epoch for epoch, and the files
that mark them done are the checkpoints they write (else an interrupted demo would skip or redo a step)."""
import config
import demo
import ood_training


def training_steps(io):
    """{title: Config} of demo.py's ood_training.py steps, parsed by ood_training.py's own parser."""
    steps = {}
    for title, argv in demo.demo_steps("data", io, seed=3):
        if argv[0] == "ood_training.py":
            args = ood_training.get_args_parser().parse_args(argv[1:])
            steps[title] = config.parse_config(ood_training.GROUPS, args)
    return steps


def test_ood_training_ends_at_a_tenth_of_the_rate_where_the_first_part_stopped(tmp_path):
    baseline, first, last = training_steps(str(tmp_path)).values()
    assert baseline.train.TRAINSET == "Cityscapes" and baseline.train.num_training_epochs == demo.BASELINE_EPOCHS
    assert first.train.training_starting_epoch == 0 and first.model.init_ckpt == demo.baseline_checkpoint(str(tmp_path))
    assert last.train.training_starting_epoch == first.train.num_training_epochs
    assert last.train.num_training_epochs == demo.OOD_EPOCHS
    assert last.train.learning_rate == first.train.learning_rate / 10
    # the resumed part draws the same COCO subsets and crops as one run would
    assert (last.run.seed, last.train.ood_subsampling_factor, last.train.crop_size) == \
        (first.run.seed, first.train.ood_subsampling_factor, first.train.crop_size)


def test_each_training_step_is_done_when_its_last_checkpoint_exists(tmp_path):
    done = demo.done_when(str(tmp_path))
    steps = training_steps(str(tmp_path))
    assert set(done) == set(steps)
    for title, cfg in steps.items():
        assert done[title] == config.layout(cfg).checkpoint(cfg.train.num_training_epochs, cfg.train.TRAINSET)
