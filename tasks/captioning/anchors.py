"""Published captioning numbers, on the coco-caption scale the suite writes (BLEU in [0, 1]).

Checked against the source on 2026-11-26. Left out because they could not be confirmed here: Show and Tell's
COCO METEOR/CIDEr and Flickr8k BLEU-1, and Show, Attend and Tell's Flickr8k BLEU-1..4.
"""

from common.anchors import Anchor

ANCHORS = (
    Anchor("Bleu_4", 0.277, "MS COCO", "test",
           "Vinyals et al. 2015, Show and Tell: A Neural Image Caption Generator (abstract: BLEU-4 27.7)",
           "as stated in the abstract; the model reads images with a pre-trained CNN"),
)
