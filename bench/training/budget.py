"""Unlearning budgets carried over from the authors' setting to this one.

The authors' epoch counts were chosen for originals trained far longer than the models
here (OPTML-Group's ResNet-18: 182 epochs; meghdadk/SCRUB's: 25). Ten epochs of RL after
182 of training cost 5% of it; after this benchmark's 5 they would cost twice a retraining,
which no one would run. A method whose ``Config`` leaves an epoch count ``None`` gets the
authors' count as the same share of this original's training: faithful to what the code
spends, and exactly the authors' count on the authors' training length.
"""

from __future__ import annotations


def scaled_epochs(authors_epochs: int, authors_training_epochs: int, training_epochs: int) -> int:
    """``authors_epochs`` × ``training_epochs`` / ``authors_training_epochs``, rounded, at least one."""
    return max(1, round(authors_epochs * training_epochs / authors_training_epochs))
