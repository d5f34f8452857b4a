"""Synthetic captioning data: shape-scene JPEGs with five varied captions each, in three real formats.

``write_caption_dataset(folder, ...)`` writes, from one seed:

    images/000001.jpg ...                          the drawn scenes (data/synthetic/scenes.py)
    annotations/captions_{train,val,test}.json     COCO captions format (read by data/coco_captions.py)
    Flickr8k.token.txt, Flickr_8k.{train,dev,test}Images.txt   Flickr8k format (data/flickr8k.py)
    dataset_synthetic.json                         Karpathy split format (data/karpathy.py)
    generator.json                                 the parameters; written last, marks a finished folder

Captions depend on the image: colours, shapes, sizes, the number of objects, where a single object
is, left/right or above/below relations, and the background. Each image gets 5 captions drawn from
a larger pool of templates, so references vary in wording and in which facts they mention (as
human captions do), and a single "most frequent caption" cannot fit many images.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from data.synthetic import scenes
from data.synthetic.scenes import Scene, SceneObject

GENERATOR_VERSION = 1  # bump when the output for a given seed changes
_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "diamond": "diamonds",
            "cross": "crosses"}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun(item: SceneObject, with_size: bool = False) -> str:
    words = f"{item.size} {item.colour} {item.shape}" if with_size else f"{item.colour} {item.shape}"
    return f"{_article(words)} {words}"


_REGION_PHRASES = {"centre": "in the centre", "top": "at the top", "bottom": "at the bottom", "left": "on the left",
                   "right": "on the right"}


def _region_phrase(item: SceneObject) -> str:
    where = scenes.region(item)
    return _REGION_PHRASES.get(where, f"in the {where}")


def _pair_relation(a: SceneObject, b: SceneObject) -> tuple[str, str]:
    """Two phrasings of where a is relative to b (the clearer axis wins)."""
    horizontal = scenes.horizontal_relation(a, b)
    vertical = scenes.vertical_relation(a, b)
    if horizontal and (not vertical or abs(a.x - b.x) >= abs(a.y - b.y)):
        if horizontal == "left of":
            return f"{_noun(a)} to the left of {_noun(b)}", f"{_noun(b)} to the right of {_noun(a)}"
        return f"{_noun(a)} to the right of {_noun(b)}", f"{_noun(b)} to the left of {_noun(a)}"
    if vertical == "above":
        return f"{_noun(a)} above {_noun(b)}", f"{_noun(b)} below {_noun(a)}"
    if vertical == "below":
        return f"{_noun(a)} below {_noun(b)}", f"{_noun(b)} above {_noun(a)}"
    return f"{_noun(a)} next to {_noun(b)}", f"{_noun(b)} next to {_noun(a)}"


def caption_pool(scene: Scene) -> list[str]:
    """Every template that is true of ``scene`` (lowercase words, no final full stop)."""
    objects = sorted(scene.objects, key=lambda o: o.x)  # left to right
    background = scene.background
    count = len(objects)
    pool: list[str] = []
    if count == 1:
        (item,) = objects
        pool += [
            f"{_noun(item, True)} on a {background} background",
            f"{_noun(item)} {_region_phrase(item)}",
            f"there is one {item.colour} {item.shape} in the picture",
            f"a single {item.size} {item.colour} {item.shape}",
            f"a {background} image with {_noun(item)}",
            f"{_noun(item, True)} {_region_phrase(item)}",
            f"one {item.colour} {item.shape} on {background}",
        ]
        return pool
    colours = [o.colour for o in objects]
    shapes = [o.shape for o in objects]
    if count == 2:
        a, b = objects
        first, second = _pair_relation(a, b)
        pool += [
            first,
            second,
            f"two shapes : {_noun(a, True)} and {_noun(b, True)}",
            f"{_noun(a)} and {_noun(b)} on a {background} background",
        ]
        if a.shape == b.shape:
            pool.append(f"two {_PLURALS[a.shape]} , one {a.colour} and one {b.colour}")
        elif a.colour == b.colour:
            pool.append(f"two {a.colour} shapes : a {a.shape} and a {b.shape}")
        else:
            pool.append(f"there are two shapes on a {background} background")
        pool.append(f"{first} on {background}")
        return pool
    number = _COUNT_WORDS[count]
    listed = " , ".join(_noun(o) for o in objects[:-1]) + f" and {_noun(objects[-1])}"
    pool += [
        f"{number} shapes on a {background} background",
        listed,
        f"{number} shapes with {_noun(objects[0])} on the left",
        f"{number} shapes with {_noun(objects[-1])} on the right",
        f"{_pair_relation(objects[0], objects[1])[0]} and {_COUNT_WORDS[count - 2]} more",
        f"there are {number} shapes in the picture",
    ]
    for colour in dict.fromkeys(colours):
        if colours.count(colour) >= 2:
            pool.append(f"{_COUNT_WORDS[colours.count(colour)]} {colour} shapes among {number}")
    for shape in dict.fromkeys(shapes):
        if shapes.count(shape) >= 2:
            pool.append(f"{_COUNT_WORDS[shapes.count(shape)]} {_PLURALS[shape]} on a {background} background")
    return pool


def captions_for(scene: Scene, rng: np.random.Generator, count: int = 5) -> list[str]:
    """``count`` different captions of ``scene`` chosen at random from its pool, first letter capitalised."""
    pool = caption_pool(scene)
    chosen = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    captions = [pool[int(i)] for i in chosen]
    return [caption[0].upper() + caption[1:] + "." for caption in captions]


def write_caption_dataset(
    folder: str | os.PathLike,
    split_sizes: dict[str, int],
    image_size: int = 64,
    max_objects: int = 3,
    seed: int = 0,
    captions_per_image: int = 5,
) -> dict[str, Any]:
    """Writes the three formats into ``folder`` unless a finished folder with the same parameters is there.

    split_sizes: images per split, keys "train", "validation", "test". Returns the parameters.
    """
    from common.io import atomic_write_json, atomic_write_text

    folder = Path(folder)
    for split in ("train", "validation", "test"):
        if split_sizes.get(split, 0) < 1:
            raise ValueError(f"split_sizes[{split!r}]={split_sizes.get(split)!r}; expected at least 1 image")
    parameters = {
        "generator": "data.synthetic.captions",
        "version": GENERATOR_VERSION,
        "split_sizes": {k: int(split_sizes[k]) for k in ("train", "validation", "test")},
        "image_size": int(image_size),
        "max_objects": int(max_objects),
        "seed": int(seed),
        "captions_per_image": int(captions_per_image),
    }
    marker = folder / "generator.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == parameters:
                return parameters
        except json.JSONDecodeError:
            pass
        marker.unlink()  # different parameters or a damaged marker: regenerate everything
    rng = np.random.default_rng(seed)
    image_folder = folder / "images"
    coco_names = {"train": "train", "validation": "val", "test": "test"}
    flickr_names = {"train": "train", "validation": "dev", "test": "test"}
    karpathy_names = {"train": "train", "validation": "val", "test": "test"}
    token_lines: list[str] = []
    karpathy_images: list[dict[str, Any]] = []
    image_id = 0
    for split in ("train", "validation", "test"):
        coco_images, coco_annotations, names = [], [], []
        for _ in range(split_sizes[split]):
            image_id += 1
            scene = scenes.random_scene(rng, max_objects=max_objects)
            captions = captions_for(scene, rng, captions_per_image)
            name = f"{image_id:06d}.jpg"
            scenes.write_jpeg(scenes.draw_scene(scene, image_size), image_folder / name)
            names.append(name)
            coco_images.append({"id": image_id, "file_name": name, "height": image_size, "width": image_size})
            sentences = []
            for index, caption in enumerate(captions):
                coco_annotations.append({"id": len(token_lines) + 1, "image_id": image_id, "caption": caption})
                token_lines.append(f"{name}#{index}\t{caption}")
                sentences.append({"raw": caption, "tokens": caption.lower().rstrip(".").split(), "imgid": image_id - 1})
            karpathy_images.append(
                {"filepath": "images", "filename": name, "imgid": image_id - 1, "cocoid": image_id,
                 "split": karpathy_names[split], "sentences": sentences}
            )
        atomic_write_json(
            folder / "annotations" / f"captions_{coco_names[split]}.json",
            {"info": {"description": f"synthetic shape scenes, {split} split", "seed": seed}, "licenses": [],
             "images": coco_images, "annotations": coco_annotations},
        )
        atomic_write_text(folder / f"Flickr_8k.{flickr_names[split]}Images.txt", "\n".join(names) + "\n")
    atomic_write_text(folder / "Flickr8k.token.txt", "\n".join(token_lines) + "\n")
    atomic_write_json(folder / "dataset_synthetic.json", {"dataset": "synthetic", "images": karpathy_images})
    atomic_write_json(marker, parameters)
    return parameters
