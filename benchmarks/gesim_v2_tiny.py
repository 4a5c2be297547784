"""gesim_v2 built from gesim's own classes with tiny random weights, run through the ge-sim-2 adapter.

    PYTHONPATH=. python benchmarks/gesim_v2_tiny.py [FRAMES]

Needs gesim installed from a GE-Sim-V2 checkout (docs/gesim.md) with diffusers. Builds
``GeSimV2WorldModel`` without its checkpoint: the Wan VAE (base_dim 8), the multi-view Cosmos
transformer with its pose expert (1 layer, 2 heads), gesim's scheduler and pipeline, random prompt
embeddings, no fused kernels; then generates the first FRAMES frames (default 8) of the sample's
first episode with one denoising step, on the CPU. Prints the time, the shapes, and whether the
output is finite.
"""

import sys
import time

import numpy as np
import torch
from gesim.models.gesim_v2.model import GeSimV2WorldModel
from gesim.models.gesim_v2.networks.autoencoders.autoencoder_kl_wan import AutoencoderKLWan
from gesim.models.gesim_v2.networks.transformers.transformer_cosmos_multiview_PE import (
    MultiViewCosmosTransformer3DModelState,
)
from gesim.models.gesim_v2.pipelines.pipeline_cosmos_acwm_PE_eff import ACWMCosmos2PosePipeline
from gesim.models.gesim_v2.schedulers.scheduling_flow_match_euler_discrete import (
    FlowMatchEulerDiscreteScheduler,
)


def tiny_world(steps: int = 1) -> GeSimV2WorldModel:
    torch.manual_seed(0)
    m = GeSimV2WorldModel({"device": "cpu", "dtype": "float32", "num_inference_steps": steps})
    m.device, m.dtype = torch.device("cpu"), torch.float32
    m.vae = AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1).eval()
    m.scheduler = FlowMatchEulerDiscreteScheduler()
    m.transformer = MultiViewCosmosTransformer3DModelState(
        in_channels=26,
        out_channels=16,
        num_attention_heads=2,
        attention_head_dim=16,
        num_layers=1,
        mlp_ratio=2.0,
        text_embed_dim=16,
        adaln_lora_dim=8,
        max_size=[128, 240, 240],
        patch_size=[1, 2, 2],
        rope_scale=[1.0, 3.0, 3.0],
        concat_padding_mask=True,
        extra_pos_embed_type=None,
        use_view_embed=True,
        pose_expert=True,
        pose_in_channels=16,
        pose_num_attention_heads=2,
        pose_attention_head_dim=8,
    ).eval()
    m.transformer._pose_only_forward = False
    m.prompt_embeds = torch.randn(1, 8, 16)
    m.liger_norm = m.liger_layernorm = m.triton_rope = False
    m.sparge_config = None
    m.pipe = ACWMCosmos2PosePipeline(
        text_encoder=None, tokenizer=None, transformer=m.transformer, vae=m.vae, scheduler=m.scheduler
    )
    return m


if __name__ == "__main__":
    from dataclasses import replace

    from ewmbench.data.datasets import resolve_dataset
    from ewmbench.data.layout import GroundTruth
    from ewmbench.errors import ConfigError
    from ewmbench.models.gesim import GESim2Model
    from ewmbench.run import build_request

    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    episode = GroundTruth(resolve_dataset("sample")).episodes[0]
    adapter = GESim2Model(world_model="example")
    adapter.world = tiny_world()
    request = build_request(episode, "1", seed=0, model=adapter)
    request = replace(request, num_frames=frames)
    start = time.perf_counter()
    try:
        result = adapter.generate(request)
    except ConfigError as exc:  # e.g. non-finite output, refused by the adapter
        print("seconds", round(time.perf_counter() - start, 1), "refused:", exc)
        sys.exit(1)
    print("seconds", round(time.perf_counter() - start, 1))
    print(
        {k: v.shape for k, v in result.frames.items()},
        {k: v.shape for k, v in result.state.items()},
        result.info,
    )
    print(
        "state finite",
        bool(np.isfinite(result.state["joint_state"]).all()),
        "frames mean",
        float(result.frames["head"].mean()),
    )
