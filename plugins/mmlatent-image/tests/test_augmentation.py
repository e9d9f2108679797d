"""Batched TrivialAugmentWide: every operation at every magnitude gives torchvision's pixels; the draw covers
torchvision's space; a batch is each image transformed by its own draw."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from mmlatent_image.augmentation import (
    MAGNITUDE_BINS,
    OPERATIONS,
    SIGNED,
    apply_operation,
    draw,
    magnitudes,
    trivial_augment_wide,
)

REFERENCE = v2.TrivialAugmentWide()


def reference(image: torch.Tensor, operation: str, magnitude: float) -> torch.Tensor:
    """torchvision's TrivialAugmentWide applied to one ``(C, H, W)`` uint8 image with this operation and magnitude."""
    return REFERENCE._apply_image_or_video_transform(image, operation, magnitude, interpolation=REFERENCE.interpolation,
                                                     fill=REFERENCE._fill)


def random_images(count: int, channels: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, channels, height, width), generator=generator, dtype=torch.uint8)
    images[0] = 7  # a flat image: autocontrast's and equalize's degenerate case
    images[1, :, : height // 2] = 250  # a bright half: solarize and brightness clip
    return images


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("shape", [(3, 16, 16), (1, 12, 12), (3, 10, 14)], ids=["rgb", "gray", "non-square"])
def test_every_operation_and_magnitude_gives_torchvisions_pixels(operation, shape):
    images = random_images(4, *shape)
    table = magnitudes(operation)
    values = [0.0] if table is None else [float(v) for v in table]
    if operation in SIGNED:
        values += [-v for v in values if v != 0]
    for value in values:
        # every image of the batch with its own magnitude: this one, and a different one for the odd images
        other = values[(values.index(value) + 7) % len(values)]
        per_image = torch.tensor([value, other, value, other], dtype=torch.float64)
        mine = apply_operation(operation, images, per_image)
        assert mine.dtype == torch.uint8 and mine.shape == images.shape
        for image, result, magnitude in zip(images, mine, per_image.tolist()):
            assert torch.equal(result, reference(image, operation, magnitude)), (operation, magnitude)


def test_the_space_is_torchvisions():
    space = REFERENCE._AUGMENTATION_SPACE  # operation -> (magnitudes(bins, height, width), signed)
    assert OPERATIONS == tuple(space)
    for operation, (table, signed) in space.items():
        theirs, mine = table(MAGNITUDE_BINS, 32, 32), magnitudes(operation)
        assert (theirs is None and mine is None) or torch.equal(theirs, mine), operation
        assert (operation in SIGNED) == signed, operation


def test_draw_covers_torchvisions_space():
    count = 14_000
    plan = draw(count, torch.Generator().manual_seed(1))
    assert plan.operations.shape == plan.magnitudes.shape == (count,)
    frequencies = torch.bincount(plan.operations, minlength=len(OPERATIONS))
    assert bool(((frequencies > 850) & (frequencies < 1150)).all()), frequencies  # 1,000 each, std about 30
    for index, operation in enumerate(OPERATIONS):
        drawn = plan.magnitudes[plan.operations == index]
        table = magnitudes(operation)
        if table is None:
            assert bool((drawn == 0).all())
            continue
        assert set(drawn.abs().tolist()) == set(table.double().tolist())  # every one of the 31 bins, nothing else
        negative = float((drawn < 0).double().mean())
        assert 0.4 < negative < 0.6 if operation in SIGNED else negative == 0
    assert len(magnitudes("Rotate")) == MAGNITUDE_BINS
    with pytest.raises(ValueError, match="unknown operation"):
        magnitudes("Invert")


def test_a_batch_is_each_image_with_its_own_draw():
    images = random_images(64, 3, 16, 16, seed=2)
    augmented = trivial_augment_wide(images, torch.Generator().manual_seed(3))
    plan = draw(len(images), torch.Generator().manual_seed(3))
    assert len(set(plan.operations.tolist())) >= 12  # most operations occur in the batch
    for image, result, operation, magnitude in zip(images, augmented, plan.operations.tolist(),
                                                   plan.magnitudes.tolist()):
        assert torch.equal(result, reference(image, OPERATIONS[operation], magnitude))
    assert not torch.equal(augmented, images)


def test_only_uint8_images_with_one_or_three_channels():
    with pytest.raises(ValueError, match="uint8 images"):
        trivial_augment_wide(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="uint8 images"):
        trivial_augment_wide(torch.zeros(2, 4, 8, 8, dtype=torch.uint8))
