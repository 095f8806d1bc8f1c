"""Training one model: CPU or CUDA (with AMP), one process or many under torchrun (DDP).

Every epoch ends with a checkpoint, so a killed run resumes losing at most that epoch; each
epoch's shuffling and augmentation are seeded by (seed, epoch, rank), so a resumed run continues
exactly as an uninterrupted one would. The best epoch on validation accuracy is kept apart.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from vocalstream.files import atomic_path
from vocalstream.models.classifiers import build
from vocalstream.models.labels import LABELS, NUM_CLASSES, ONE_VOICE
from vocalstream.train.augment import (
    limit_bandwidth,
    mask_time_and_frequency,
    mixup,
    mixup_loss,
    reverse_time,
)
from vocalstream.train.loss import cross_entropy, is_right
from vocalstream.train.recipe import Recipe

CHECKPOINT = "checkpoint.pt"  # the last finished epoch: model, optimiser, scheduler, scaler
BEST = "best.pt"  # the weights of the best epoch on validation, all export needs
METRICS = "metrics.jsonl"


@dataclass
class Split:
    """Features [N, 1, N_MELS, frames] and labels [N] held in memory, with the class weights of
    its examples (see train.data.class_weights)."""

    features: torch.Tensor
    labels: torch.Tensor
    class_weights: tuple[float, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_from_environment() -> Distributed:
    """torchrun's RANK / WORLD_SIZE / LOCAL_RANK; a plain process is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    return Distributed(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def classification_report(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix. Examples of one
    voice of unstated gender (ONE_VOICE) count in the accuracy, right when called male or
    female, and in `one_voice` apart; the per-class figures and the matrix leave them out."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    right = is_right(torch.from_numpy(labels), torch.from_numpy(predictions)).numpy()
    unstated = labels == ONE_VOICE
    classes = list(range(NUM_CLASSES))
    stated_labels, stated_predictions = labels[~unstated], predictions[~unstated]
    precision, recall, f1, support = precision_recall_fscore_support(
        stated_labels, stated_predictions, labels=classes, zero_division=0
    )
    report = {
        "accuracy": float(np.mean(right)) if len(labels) else 0.0,
        "per_class": {
            LABELS[c]: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c in classes
        },
        "confusion": confusion_matrix(stated_labels, stated_predictions, labels=classes).tolist(),
    }
    if unstated.any():
        report["one_voice"] = {
            "recall": float(np.mean(right[unstated])),
            "support": int(unstated.sum()),
        }
    return report


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module, features: torch.Tensor, device: str, batch: int = 64
) -> torch.Tensor:
    """Softmax probabilities [N, NUM_CLASSES] of a classifier in eval mode."""
    model.eval()
    parts = [
        torch.softmax(model(features[i : i + batch].to(device)).float(), dim=1).cpu()
        for i in range(0, len(features), batch)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, NUM_CLASSES)


def _optimizer(recipe: Recipe, model: torch.nn.Module) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
        )
    return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


def _scheduler(recipe: Recipe, optimizer: torch.optim.Optimizer):
    if recipe.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=recipe.gamma, patience=recipe.patience
        )
    return torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(recipe.milestones), gamma=recipe.gamma
    )


def _augment(features: torch.Tensor, recipe: Recipe, rng: np.random.Generator) -> torch.Tensor:
    features = limit_bandwidth(features, rng, recipe.band_limit_p)
    features = mask_time_and_frequency(
        features, rng, recipe.time_mask_p, recipe.frequency_mask_p, recipe.mask_width
    )
    return reverse_time(features, rng, recipe.reverse_p)


def _plot(out: Path, history: list[dict], confusion: list[list[int]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, (losses, accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    losses.plot(epochs, [h["train_loss"] for h in history], label="train")
    losses.plot(epochs, [h["val_loss"] for h in history], label="validation")
    losses.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    losses.legend()
    accuracy.plot(epochs, [h["val_accuracy"] for h in history])
    accuracy.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy", ylim=(0, 1))
    figure.tight_layout()
    figure.savefig(out / "curves.png", dpi=100)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(5, 4.5))
    matrix = np.array(confusion)
    axes.imshow(matrix, cmap="Blues")
    axes.set(
        xticks=range(NUM_CLASSES),
        yticks=range(NUM_CLASSES),
        xticklabels=LABELS,
        yticklabels=LABELS,
        xlabel="predicted",
        ylabel="true",
        title="validation, best epoch",
    )
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center")
    figure.tight_layout()
    figure.savefig(out / "confusion.png", dpi=100)
    plt.close(figure)


def train_model(
    recipe: Recipe,
    train: Split,
    validation: Split,
    out: Path,
    device: str = "cpu",
    resume: bool = False,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict:
    """Train one model of `recipe` into folder `out`; returns the best epoch's metrics."""
    from tqdm import tqdm

    context = distributed_from_environment()
    out.mkdir(parents=True, exist_ok=True)
    cuda = device.startswith("cuda")
    torch.manual_seed(recipe.seed)  # the same initial weights on every rank
    network = build(recipe.architecture).to(device)
    model = network
    if context.world > 1:
        model = DistributedDataParallel(network, device_ids=[context.local_rank] if cuda else None)
    optimizer = _optimizer(recipe, network)
    scheduler = _scheduler(recipe, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    weight = None
    if recipe.class_weighted:
        weight = torch.tensor(train.class_weights, dtype=torch.float32, device=device)

    start, best, history = 0, None, []
    if resume and (out / CHECKPOINT).exists():
        # vocalstream's own checkpoint, written below; the scheduler state needs full unpickling.
        state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start, best, history = state["epoch"], state["best"], state["history"]
        log(f"{recipe.name}: resuming after epoch {start}")
    elif resume:
        log(f"{recipe.name}: nothing to resume in {out}, starting afresh")

    sampler = DistributedSampler(
        range(len(train)), num_replicas=context.world, rank=context.rank, seed=recipe.seed
    )
    for epoch in range(start, recipe.epochs):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        rng = np.random.default_rng([recipe.seed, epoch, context.rank])
        order = torch.tensor(list(sampler))
        model.train()
        total, seen = 0.0, 0
        batches = range(0, len(order), recipe.batch_size)
        bar = tqdm(
            batches,
            desc=f"{recipe.name} epoch {epoch + 1}/{recipe.epochs}",
            unit="batch",
            disable=None if progress and context.is_main else True,
            leave=False,
        )
        for first in bar:
            indices = order[first : first + recipe.batch_size]
            features = _augment(train.features[indices], recipe, rng)
            labels = train.labels[indices]
            with torch.autocast("cuda", enabled=cuda):
                if recipe.mixup_alpha > 0:
                    features, labels_a, labels_b, lam = mixup(
                        features, labels, recipe.mixup_alpha, rng
                    )
                    logits = model(features.to(device))
                    loss = mixup_loss(
                        logits.float(), labels_a.to(device), labels_b.to(device), lam, weight
                    )
                else:
                    logits = model(features.to(device))
                    loss = cross_entropy(logits.float(), labels.to(device), weight)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += float(loss.detach()) * len(indices)
            seen += len(indices)

        if context.world > 1:
            # Each rank's BatchNorm statistics followed its own batches; validating, scheduling
            # and saving must all see rank 0's, or ranks could pick different learning rates.
            for buffer in network.buffers():
                dist.broadcast(buffer, src=0)
        probabilities = predict_probabilities(network, validation.features, device)
        val_loss = float(cross_entropy(probabilities.clamp(min=1e-12).log(), validation.labels))
        report = classification_report(validation.labels.numpy(), probabilities.argmax(1).numpy())
        if recipe.scheduler == "plateau":
            scheduler.step(val_loss)
        else:
            scheduler.step()
        record = {
            "epoch": epoch + 1,
            "train_loss": total / max(seen, 1),
            "val_loss": val_loss,
            "val_accuracy": report["accuracy"],
            "per_class": report["per_class"],
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
        }
        history.append(record)
        improved = best is None or report["accuracy"] > best["val_accuracy"]
        if improved:
            best = {**record, "confusion": report["confusion"]}
        if context.is_main:
            if improved:
                with atomic_path(out / BEST) as scratch:
                    torch.save(network.state_dict(), scratch)
            with atomic_path(out / CHECKPOINT) as scratch:
                torch.save(
                    {
                        "model": network.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(),
                        "epoch": epoch + 1,
                        "best": best,
                        "history": history,
                        "architecture": recipe.architecture,
                    },
                    scratch,
                )
            with atomic_path(out / METRICS) as scratch:  # rewritten whole: no duplicate epochs
                scratch.write_text("".join(json.dumps(h) + "\n" for h in history))
            log(
                f"{recipe.name} epoch {epoch + 1}/{recipe.epochs}: train loss "
                f"{record['train_loss']:.4f}, val loss {val_loss:.4f}, "
                f"val accuracy {report['accuracy']:.3f} ({record['seconds']:.1f} s)"
            )
        if context.world > 1:
            dist.barrier()

    if context.world > 1:
        best["ranks_in_sync"] = _ranks_in_sync(network)
    if context.is_main:
        _plot(out, history, best["confusion"])
    return best


def _ranks_in_sync(network: torch.nn.Module) -> bool:
    """Whether every rank ends with the same parameters and buffers."""
    flat = torch.cat([p.detach().flatten().float().cpu() for p in network.state_dict().values()])
    gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])


def load_trained(member_dir: Path, architecture: str, device: str = "cpu") -> torch.nn.Module:
    """The best weights of a trained member, in eval mode."""
    network = build(architecture)
    network.load_state_dict(torch.load(member_dir / BEST, map_location=device, weights_only=True))
    return network.to(device).eval()
