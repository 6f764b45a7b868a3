"""Image rotation: exact at multiples of 90 degrees, per-image angles, bad input refused."""

import pytest
import torch

from aicanon.vision.transforms import rotate


def test_rotation_by_90_degrees_is_rot90_and_0_is_identity():
    image = torch.rand(2, 3, 28, 28)
    assert torch.allclose(rotate(image, 0.0), image, atol=1e-5)
    assert torch.allclose(rotate(image, 90.0), torch.rot90(image, 1, dims=(2, 3)), atol=1e-4)
    assert torch.allclose(rotate(image, 180.0), torch.rot90(image, 2, dims=(2, 3)), atol=1e-4)


def test_per_image_angles_equal_one_angle_at_a_time():
    images = torch.rand(3, 1, 9, 9)
    degrees = torch.tensor([10.0, -35.0, 120.0])
    together = rotate(images, degrees)
    for i in range(3):
        assert torch.allclose(together[i], rotate(images[i : i + 1], float(degrees[i]))[0], atol=1e-6)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="images must be a 4-D tensor"):
        rotate(torch.rand(28, 28), 10.0)
    with pytest.raises(ValueError, match="degrees must be a tensor of shape \\[2\\]"):
        rotate(torch.rand(2, 1, 5, 5), torch.zeros(3))
    with pytest.raises(TypeError, match="images must be a floating-point tensor"):
        rotate(torch.zeros(1, 1, 5, 5, dtype=torch.uint8), 10.0)
