"""Published VQA numbers (the official accuracy in percent, as metrics["model"]["vqa_accuracy"] is written).

Checked on 2026-11-26. The VQA v2 row was read from a published summary of Goyal et al.'s Table 1 (the paper
itself was not reachable here). Its test-dev figure for "d-LSTM Q + norm I" could not be confirmed and is left
out (the 54.22 found in that summary's table is MCB trained on VQA v1 and tested on balanced v2 val).
"""

from common.anchors import Anchor

ANCHORS = (
    Anchor("vqa_accuracy", 58.16, "VQA v1 real images, open-ended", "test-standard",
           "GT-Vision-Lab/VQA_LSTM_CNN README: deeper LSTM + normalized CNN (the VQA paper's baseline code)",
           "CNN features of real COCO images; the suite's default runs on synthetic scenes"),
    Anchor("vqa_accuracy", 51.62, "VQA v2 (balanced), real images, open-ended", "val (trained on balanced train)",
           "Goyal et al. 2017, Making the V in VQA Matter, Table 1: d-LSTM Q + norm I, BB column",
           "the same baseline model as above, on the balanced dataset"),
)
