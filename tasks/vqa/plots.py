"""Pictures of the VQA task: a grid of test images with their question, the model's answer and the humans'."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from common.io import atomic_path
from data.vqa import VQARecord


def plot_examples(path: Path, records: Sequence[VQARecord], predicted: Sequence[str], count: int = 8) -> None:
    """Up to ``count`` test questions, one per distinct image where possible, in a 2-row grid.

    Each title: the question, the model's answer, and the most common human answer (with how many of
    the 10 annotators gave it); green when the model's answer is among the human answers, red otherwise.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    chosen, seen = [], set()
    for index, record in enumerate(records):
        if record.image_id not in seen:
            chosen.append(index)
            seen.add(record.image_id)
        if len(chosen) == count:
            break
    if not chosen:
        return
    columns = (len(chosen) + 1) // 2
    figure, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 7), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, index in zip(axes.ravel(), chosen):
        record, answer = records[index], predicted[index]
        with Image.open(record.image_path) as image:
            axis.imshow(image.convert("RGB"))
        human, votes = Counter(record.answers).most_common(1)[0]
        correct = answer in record.answers
        axis.set_title(f"{record.question}\nmodel: {answer}\nhumans: {human} ({votes}/{len(record.answers)})",
                       fontsize=8, color="tab:green" if correct else "tab:red")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=90)
    plt.close(figure)
