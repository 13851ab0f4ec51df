"""Subpopulations of a class for ``subclass:<k>:<j>`` scenarios: a seeded k-means on pixels.

The clusters must not depend on any trained model (a method's own features would decide
what it is asked to forget), so they are found in pixel space: each image as its [0, 1]
pixel values, k-means++ seeding from a fixed generator, then Lloyd's iterations to a fixed
point, in float64 on the CPU (the same clusters on every machine and run). On the digit sets
pixel clusters are styles of writing (slant, stroke width, open or closed loops); on
CIFAR-10 they are colour and layout (a dark background, a centred object), a coherent kind
of image as a deletion request of "one kind of photo" would be. A fixed random-feature
embedding was the alternative; it adds an arbitrary network whose features are dominated by
the same low-frequency pixel statistics, and one more thing to pin down.

The training images of the class are clustered; the test images of the class are assigned
to the nearest centre by the same rule, so the forgotten subpopulation has a test set too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bench.core.errors import UserError
from bench.core.store import load_verified, save_tensors, stable_hash

# Bump when the clustering rule changes: cached clusterings made by the old one are redone.
CLUSTERING_VERSION = 1
CLUSTER_SEED = 0
MAX_ITERATIONS = 300


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` images as float64 ``(N, C·H·W)`` rows in [0, 1]."""
    return images.detach().cpu().flatten(1).to(torch.float64) / 255.0


def nearest(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """The index of each point's nearest centre (the lowest index on a tie)."""
    distances = (points.square().sum(1, keepdim=True) - 2 * points @ centres.T + centres.square().sum(1)).clamp_min(0)
    return distances.argmin(1)


def kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur and Vassilvitskii 2007): each next centre drawn with
    probability proportional to the squared distance to the nearest centre so far."""
    first = int(torch.randint(len(points), (1,), generator=generator))
    centres = [points[first]]
    closest = (points - points[first]).square().sum(1)
    for _ in range(1, k):
        if float(closest.sum()) == 0.0:
            raise ValueError("fewer distinct points than clusters")
        chosen = int(torch.multinomial(closest, 1, generator=generator))
        centres.append(points[chosen])
        closest = torch.minimum(closest, (points - points[chosen]).square().sum(1))
    return torch.stack(centres)


def kmeans(points: torch.Tensor, k: int, seed: int = CLUSTER_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centres, assignment)`` of Lloyd's k-means from k-means++ seeding, iterated until no
    point changes cluster (at most ``MAX_ITERATIONS``); deterministic for a given seed."""
    if len(points) < k:
        raise ValueError(f"{len(points)} points cannot make {k} clusters")
    centres = kmeans_plus_plus(points, k, torch.Generator().manual_seed(seed))
    assignment = nearest(points, centres)
    for _ in range(MAX_ITERATIONS):
        for j in range(k):
            members = assignment == j
            if bool(members.any()):
                centres[j] = points[members].mean(0)
        updated = nearest(points, centres)
        if torch.equal(updated, assignment):
            break
        assignment = updated
    return centres, assignment


@dataclass(frozen=True)
class ClassClusters:
    """The clusters of one class: centres in pixel space and each training image's cluster
    (``train_assignment``, aligned with ``train_members``, the class's training indices)."""

    centres: torch.Tensor
    train_members: torch.Tensor
    train_assignment: torch.Tensor

    def assign(self, images: torch.Tensor) -> torch.Tensor:
        return nearest(pixels(images), self.centres)


def cluster_class(images: torch.Tensor, labels: torch.Tensor, forget_class: int, clusters: int) -> ClassClusters:
    """Cluster the images of ``forget_class`` into ``clusters`` groups (see the module's doc)."""
    members = torch.nonzero(labels.cpu() == forget_class).flatten()
    if len(members) < clusters:
        raise UserError(f"class {forget_class} has {len(members)} training samples, too few for {clusters} clusters")
    try:
        centres, assignment = kmeans(pixels(images[members.to(images.device)]), clusters)
    except ValueError as error:
        raise UserError(f"class {forget_class} cannot be split into {clusters} clusters: {error}") from None
    return ClassClusters(centres, members, assignment)


def cached_class_clusters(
    path: Path, fingerprint: str, images: torch.Tensor, labels: torch.Tensor, forget_class: int, clusters: int,
) -> ClassClusters:
    """:func:`cluster_class`, kept in ``path`` for the data ``fingerprint`` (recomputed when
    the file is missing, damaged or made for other data or another rule)."""
    key = stable_hash([fingerprint, forget_class, clusters, CLUSTER_SEED, CLUSTERING_VERSION], length=64)
    loaded = load_verified(path, key)
    if loaded is not None:
        tensors, _ = loaded
        return ClassClusters(tensors["centres"], tensors["train_members"], tensors["train_assignment"])
    found = cluster_class(images, labels, forget_class, clusters)
    save_tensors(path, {"centres": found.centres, "train_members": found.train_members,
                        "train_assignment": found.train_assignment}, {"key": key})
    return found
