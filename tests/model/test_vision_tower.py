"""Our VisionTower against transformers' CLIP and SigLIP vision models (tiny, random), at the
trained image size and at other sizes (position embeddings interpolated bicubically)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from chatapp.model.config import ConfigError  # noqa: E402
from chatapp.model.vision import VisionConfig, VisionTower  # noqa: E402

SHAPE = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             image_size=32, patch_size=8)


def _pair(family: str):
    T = transformers
    if family == "clip":
        config, cls = T.CLIPVisionConfig(**SHAPE), T.CLIPVisionModel
        ours = VisionConfig(family="clip", dim=48, n_layers=2, n_heads=4, intermediate_size=96,
                            image_size=32, patch_size=8, norm_eps=config.layer_norm_eps, act="quick_gelu")
    else:
        config, cls = T.SiglipVisionConfig(**SHAPE), T.SiglipVisionModel
        ours = VisionConfig(family="siglip", dim=48, n_layers=2, n_heads=4, intermediate_size=96,
                            image_size=32, patch_size=8, norm_eps=config.layer_norm_eps, act="gelu_pytorch_tanh")
    torch.manual_seed(0)
    ref = cls(config).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.2)
    tower = VisionTower(ours).eval()
    state = {k.removeprefix("vision_model."): v for k, v in ref.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.startswith("head.") and "position_ids" not in k}
    missing, unexpected = tower.load_state_dict(state, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return ref, tower


@pytest.mark.parametrize("family", ["clip", "siglip"])
@pytest.mark.parametrize("size", [(32, 32), (48, 40)])
@torch.no_grad()
def test_tower_matches_reference(family, size):
    ref, tower = _pair(family)
    pixels = torch.randn(2, 3, *size)
    resized = size != (32, 32)
    expected = ref(pixel_values=pixels, interpolate_pos_encoding=resized, output_hidden_states=True)
    assert torch.allclose(tower(pixels), expected.last_hidden_state, atol=1e-5)
    for ours, theirs in zip(tower.hidden_states(pixels), expected.hidden_states):
        assert torch.allclose(ours, theirs, atol=1e-5)


def test_bad_vision_config_is_specific():
    with pytest.raises(ConfigError, match="not a multiple of patch_size"):
        VisionConfig(family="clip", dim=48, n_layers=1, n_heads=4, intermediate_size=8, image_size=30, patch_size=8)
    with pytest.raises(ConfigError, match="vision family"):
        VisionConfig(family="vit", dim=48, n_layers=1, n_heads=4, intermediate_size=8, image_size=32, patch_size=8)
