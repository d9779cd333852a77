"""Stage 1: fine-tune a Cityscapes network so that its softmax entropy is maximal on COCO objects.

One process:        python ood_training.py [flags]
Several processes:  torchrun --nproc_per_node N ood_training.py [flags]
"""
import json
import os
import time

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

import config
from src import distributed
from src.checks import check_crop, check_output_dir
from src.dataset import Cityscapes, CityscapesCocoMix, CsCocoEmbedding, transforms as T
from src.errors import UserError, run_script
from src.losses import LOSSES
from src.model import build_model, load_checkpoint
from src.model.checkpoint import save_checkpoint_file
from src.runtime import seed_everything, use_amp

GROUPS = {"paths": config.Paths, "run": config.Run, "model": config.Model, "train": config.Training}


class TrainingDiverged(UserError):
    """The loss or a logit left its bounds; the last good checkpoint is unchanged."""


def get_args_parser():
    return config.build_parser(__doc__, GROUPS)


def train_transform(cfg):
    return T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(cfg.train.crop_size), T.ToTensor(),
                      T.Normalize()])


def build_dataset(cfg, epoch):
    """The epoch's training set: Cityscapes train plus a fresh COCO draw (or Cityscapes alone)."""
    transform = train_transform(cfg)
    if cfg.train.TRAINSET == "Cityscapes":
        return Cityscapes(cfg.paths.cityscapes, "train", transform)
    return CityscapesCocoMix(cfg.paths.cityscapes, cfg.paths.coco, "train", transform,
                             subsampling_factor=cfg.train.ood_subsampling_factor, seed=cfg.run.seed + epoch,
                             coco_background=cfg.train.coco_background)


def build_loader(dataset, cfg, ctx, epoch):
    if ctx.world_size > 1:
        sampler = DistributedSampler(dataset, ctx.world_size, ctx.rank, shuffle=True, seed=cfg.run.seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.run.seed + epoch))
    # drop_last: a last batch of one image breaks BatchNorm in the ASPP's image pooling
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size, sampler=sampler, drop_last=True,
                        num_workers=cfg.run.num_workers, pin_memory=ctx.device.type == "cuda")
    if len(loader) == 0:
        raise UserError(f"{len(dataset)} training images make no full batch of --batch_size {cfg.train.batch_size} "
                        f"on each of {ctx.world_size} processes; lower --batch_size")
    return loader


def embedding_batches(cfg, ctx, epoch):
    """The epoch's endless stream of cs_coco_embedding batches, cycling through the set in a fresh order
    each time round."""
    dataset = CsCocoEmbedding(cfg.paths.cs_coco_embedding, train_transform(cfg))
    cycle = 0
    while True:
        sampler = DistributedSampler(dataset, ctx.world_size, ctx.rank, shuffle=True, seed=cfg.run.seed + epoch)
        sampler.set_epoch(cycle)
        # drop_last as in build_loader (a batch of one image breaks BatchNorm); without a full batch the
        # stream would never yield
        loader = DataLoader(dataset, batch_size=cfg.train.batch_size, sampler=sampler, drop_last=True,
                            num_workers=cfg.run.num_workers)
        if len(loader) == 0:
            raise UserError(f"{len(dataset)} cs_coco_embedding samples make no full batch of --batch_size "
                            f"{cfg.train.batch_size} on each of {ctx.world_size} processes; lower --batch_size")
        yield from loader
        cycle += 1


def compute_loss(cfg, logits, target):
    if cfg.train.TRAINSET == "Cityscapes":
        return F.cross_entropy(logits.float(), target, ignore_index=255)
    return LOSSES[cfg.model.optim_target](logits, target, cfg.model.pareto_alpha)


def train_one_epoch(model, optimizer, scaler, autocast, loader, embeddings, cfg, ctx, epoch):
    """One pass over `loader`; returns the mean loss. Every k-th batch comes from `embeddings` instead."""
    model.train()
    k = cfg.train.embedding_img_interval
    total, count, seen, start = 0.0, 0, 0, time.time()
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.train.num_training_epochs}", disable=not ctx.is_main,
               dynamic_ncols=True)
    for b, (images, target) in enumerate(bar):
        if embeddings is not None and b % k == 0:
            images, target = next(embeddings)
        images = images.to(ctx.device, non_blocking=True)
        target = target.to(ctx.device, non_blocking=True)
        with autocast:
            logits = model(images)
        loss = compute_loss(cfg, logits, target)
        peak = logits.detach().abs().amax()
        bad = not torch.isfinite(loss) or not torch.isfinite(peak) or peak > cfg.train.logit_limit
        if distributed.any_rank(bad, ctx):
            raise TrainingDiverged(
                f"epoch {epoch + 1}, iteration {b}: loss {loss.item():.4g}, largest |logit| {peak.item():.4g} "
                f"(limit --logit_limit {cfg.train.logit_limit:g}). Training diverged: lower --learning_rate "
                f"or --pareto_alpha (the logit objective is unbounded); the last good checkpoint is unchanged")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += loss.item()
        count += 1
        seen += images.shape[0] * ctx.world_size
        bar.set_postfix(loss=f"{total / count:.4f}", img_s=f"{seen / (time.time() - start):.1f}")
    return total / max(count, 1)


def save_checkpoint(path, model, optimizer, scaler, epoch, loss, cfg):
    state = {"epoch": epoch, "state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
             "loss": loss, "config": cfg.to_dict()}
    if scaler.is_enabled():
        state["scaler_state_dict"] = scaler.state_dict()
    save_checkpoint_file(state, path)


def apply_learning_rate(optimizer, learning_rate):
    """Set -lr on a restored optimizer (its state holds the old run's rate); returns the rate it had."""
    saved = optimizer.param_groups[0]["lr"]
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    return saved


def resume_hint(cfg):
    """What to type after an interruption: resume from the last checkpoint this run saved, or start again."""
    start, end = cfg.train.training_starting_epoch, cfg.train.num_training_epochs
    saved = [e for e in range(start + 1, end + 1) if os.path.isfile(config.layout(cfg).checkpoint(e, cfg.train.TRAINSET))]
    if not saved:
        return "no epoch was finished; rerun the same command to start again"
    return (f"epochs up to {saved[-1]} are saved; continue with the same command and -epoch {saved[-1]} "
            f"(the unfinished epoch is trained again)")


def main(cfg):
    """Train as `cfg` says; returns the trained network (unwrapped, on its device)."""
    ctx = distributed.init_distributed(cfg.run.device)
    amp = use_amp(cfg.run.amp, ctx.device)
    if ctx.is_main:
        print("Config:", json.dumps(cfg.to_dict(), indent=1))
    start_epoch, end_epoch = cfg.train.training_starting_epoch, cfg.train.num_training_epochs
    if start_epoch >= end_epoch:
        raise UserError(f"-epoch {start_epoch} is already at or past -nepochs {end_epoch}: nothing to train")
    # before any work: where the checkpoints go, and whether -crop fits the images
    check_output_dir(cfg.paths.io_root, "--io_root")
    check_output_dir(os.path.dirname(config.layout(cfg).checkpoint(end_epoch, cfg.train.TRAINSET)), "--io_root")
    check_crop(build_dataset(cfg, start_epoch).images, cfg.train.crop_size)

    seed_everything(cfg.run.seed)
    model = build_model(cfg.model.MODEL, config.NUM_CLASSES).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.learning_rate)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=amp)
    if start_epoch > 0:
        path = config.layout(cfg).checkpoint(start_epoch, cfg.train.TRAINSET)
        state = load_checkpoint(model, path)
        optimizer.load_state_dict(state["optimizer_state_dict"])
        saved_lr = apply_learning_rate(optimizer, cfg.train.learning_rate)
        if amp and "scaler_state_dict" in state:
            scaler.load_state_dict(state["scaler_state_dict"])
        if ctx.is_main:
            print(f"Resuming after epoch {state['epoch']} from {path}")
            if saved_lr != cfg.train.learning_rate:
                print(f"-lr {cfg.train.learning_rate:g} applied (the checkpoint's optimizer had {saved_lr:g})")
    elif config.layout(cfg).init_checkpoint():
        load_checkpoint(model, config.layout(cfg).init_checkpoint())
        if ctx.is_main:
            print("Initial weights:", config.layout(cfg).init_checkpoint())
    elif ctx.is_main:
        print("Initial weights: random (--init_ckpt none)")

    net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None) \
        if ctx.world_size > 1 else model
    autocast = torch.autocast(ctx.device.type, dtype=torch.float16, enabled=amp)
    for epoch in range(start_epoch, end_epoch):
        # Every epoch's randomness (COCO draw, order, crops, dropout) is a function of seed and epoch alone,
        # so a resumed run repeats exactly what an uninterrupted one would have done.
        seed_everything(cfg.run.seed + 1000 * epoch + ctx.rank)
        loader = build_loader(build_dataset(cfg, epoch), cfg, ctx, epoch)
        embeddings = embedding_batches(cfg, ctx, epoch) if cfg.train.embedding_img_interval else None
        started = time.time()
        loss = train_one_epoch(net, optimizer, scaler, autocast, loader, embeddings, cfg, ctx, epoch)
        if ctx.is_main:
            path = config.layout(cfg).checkpoint(epoch + 1, cfg.train.TRAINSET)
            save_checkpoint(path, model, optimizer, scaler, epoch + 1, loss, cfg)
            print(f"epoch {epoch + 1}/{end_epoch}: loss {loss:.4f}, {len(loader.dataset)} images, "
                  f"{time.time() - started:.0f}s, saved {path}")
        distributed.barrier(ctx)
    distributed.cleanup()
    return model


if __name__ == "__main__":
    cfg = config.parse_config(GROUPS, get_args_parser().parse_args())
    run_script(main, cfg, interrupted=lambda: resume_hint(cfg))
