"""The one registry of released checkpoints retalk knows about.

Each :class:`CheckpointSpec` says which network class a release file
belongs to, how the release wraps its state dict, and where users get the
file.  Network classes are imported lazily inside the factories, so this
module (and ``import retalk.checkpoints``) works without torch installed.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

from retalk.errors import CheckpointError

__all__ = ["CheckpointSpec", "REGISTRY", "get_spec", "names"]

_VRT_RELEASE = "https://github.com/vinthony/video-retalking/releases/download/v0.0.1/"
_ST_RELEASE = "https://github.com/OpenTalker/SadTalker/releases/download/v0.0.2-rc/"
_ST_LEGACY = "https://github.com/Winfredy/SadTalker/releases/download/v0.0.2/"
_ST_BUNDLES = ("SadTalker_V0.0.2_256.safetensors", "SadTalker_V0.0.2_512.safetensors")
_SADTALKER_LEGACY = "facevid2vid_00189-model.pth.tar"
_SADTALKER_SOURCE = (_ST_RELEASE + "SadTalker_V0.0.2_256.safetensors (or _512; scripts/download_models.sh "
                     "of https://github.com/OpenTalker/SadTalker); the legacy facevid2vid_00189-model.pth.tar "
                     "of SadTalker's older releases also loads")


@dataclass(frozen=True)
class CheckpointSpec:
    """How one released network is stored and rebuilt.

    Attributes:
        name: registry name, e.g. ``"wav2lip"``.
        description: one line for ``retalk doctor`` and error messages.
        files: release file names, in order of preference (all load into the
            same network).  A ``<stem>.safetensors`` sibling of each is also
            accepted.
        source: where users get the file(s), for the "missing file" message.
        factory: builds the network with the release's constructor arguments
            (imports torch; may raise :class:`CheckpointError`).
        state_keys: keys of the top-level dict that hold the state dict, tried
            in order; empty when the file *is* the state dict.  A flat dict of
            tensors is accepted as the state dict in any case (e.g. a
            ``.safetensors`` conversion).
        strip_prefixes: leading prefixes removed (repeatedly) from every key,
            e.g. ``module.`` added by ``DataParallel``.
        implemented: ``False`` for networks retalk does not provide yet.
        notes: how the reference code loads the file, for maintainers.
        select_prefix: for bundles holding several networks in one flat dict
            (SadTalker's ``.safetensors``): when any key contains this
            substring, only those keys are kept and the substring (with
            everything before it) is removed; files without such keys (the
            legacy per-network files) are used as they are.
        drop_substrings: keys containing any of these are discarded after
            unwrapping (VideoReTalking drops ``low_res`` from LNet.pth/ENet.pth).
        companions: ``(registry name, key prefix)`` pairs: the companion's
            release file is looked up *in the same folder* as this file, read
            with the companion's own spec, and its keys are added under the
            prefix (E-Net's ``low_res.*`` comes from the LNet.pth beside it).
        build_args: derives constructor keyword arguments from the unwrapped
            state dict (e.g. the mapping net's input channels from the shape
            of its first weight); the factory receives them.
    """

    name: str
    description: str
    files: tuple[str, ...]
    source: str
    factory: Callable[[], Any]
    state_keys: tuple[str, ...] = ()
    strip_prefixes: tuple[str, ...] = ("module.",)
    implemented: bool = True
    notes: str = ""
    select_prefix: str = ""
    drop_substrings: tuple[str, ...] = ()
    companions: tuple[tuple[str, str], ...] = ()
    build_args: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    def build(self, state: Mapping[str, Any] | None = None) -> Any:
        """Instantiate the network (random weights). Imports torch.

        Args:
            state: the unwrapped state dict, when :attr:`build_args` needs it
                to choose constructor arguments; ignored otherwise.
        """
        if self.build_args is not None and state is not None:
            return self.factory(**self.build_args(state))
        return self.factory()


def _import_class(module: str, cls: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """Import ``module`` lazily and build ``cls(*args, **kwargs)``.

    Use with :func:`functools.partial`; keyword arguments given at build time
    (from :attr:`CheckpointSpec.build_args`) are added to the partial's.
    """
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.startswith("retalk"):
            raise CheckpointError(
                f"network '{name}' is not available in this version of retalk ({module} is missing)"
            ) from None
        raise
    return getattr(mod, cls)(*args, **kwargs)


def _mapping_args(state: Mapping[str, Any]) -> dict[str, Any]:
    """SadTalker's mapping net: ``coeff_nc`` (70 or 73) from ``first.0.weight`` ``(1024, coeff_nc, 7)``."""
    weight = state.get("first.0.weight")
    return {"coeff_nc": int(weight.shape[1])} if weight is not None and len(weight.shape) == 3 else {}


def _not_implemented(name: str) -> Any:
    raise CheckpointError(
        f"network '{name}' is not implemented yet in this version of retalk "
        f"(its checkpoint is registered so that `retalk doctor` can find it)"
    )


def _placeholder(name: str, description: str, files: tuple[str, ...], source: str,
                 state_keys: tuple[str, ...], notes: str) -> CheckpointSpec:
    return CheckpointSpec(
        name=name, description=description, files=files, source=source,
        factory=partial(_not_implemented, name), state_keys=state_keys,
        implemented=False, notes=notes,
    )


_SPECS: tuple[CheckpointSpec, ...] = (
    CheckpointSpec(
        name="wav2lip",
        description="Wav2Lip generator (96x96 lower-face lip sync)",
        files=("wav2lip.pth", "wav2lip_gan.pth"),
        source="the Wav2Lip authors' pre-trained weights: 'Getting the weights' in "
               "https://github.com/Rudrabha/Wav2Lip (wav2lip.pth = Wav2Lip, wav2lip_gan.pth = Wav2Lip + GAN)",
        factory=partial(_import_class, "retalk.networks.wav2lip", "Wav2Lip", "wav2lip"),
        state_keys=("state_dict",),
        notes="reference: torch.load(path)['state_dict'], 'module.' removed, strict=True; "
              "training files also hold 'optimizer', 'global_step', 'global_epoch'",
    ),
    CheckpointSpec(
        name="lipsync_expert",
        description="Wav2Lip lip-sync expert SyncNet_color (sync loss / scores)",
        files=("lipsync_expert.pth",),
        source="the Wav2Lip authors' pre-trained expert discriminator: 'Getting the weights' in "
               "https://github.com/Rudrabha/Wav2Lip (listed in earlier versions of its README)",
        factory=partial(_import_class, "retalk.networks.wav2lip", "SyncNetColor", "lipsync_expert"),
        state_keys=("state_dict",),
        notes="reference (wav2lip_train.py load_checkpoint): ['state_dict'], 'module.' removed, strict=True",
    ),
    CheckpointSpec(
        name="fid_inception",
        description="FID Inception-v3 (pytorch-fid's port of the TF FID network; FID/KID)",
        files=("pt_inception-2015-12-05-6726825d.pth",),
        source="the FID weights released with https://github.com/mseitzer/pytorch-fid "
               "(its 'fid_weights' release: pt_inception-2015-12-05-6726825d.pth)",
        factory=partial(_import_class, "retalk.networks.fid_inception", "FIDInceptionV3", "fid_inception"),
        state_keys=(),
        strip_prefixes=(),
        notes="reference: bare state dict, load_state_dict strict",
    ),
    CheckpointSpec(
        name="syncnet",
        description="SyncNet v2 (LSE-D / LSE-C lip-sync metrics)",
        files=("syncnet_v2.model",),
        source="http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model "
               "(download_model.sh of https://github.com/joonson/syncnet_python)",
        factory=partial(_import_class, "retalk.networks.syncnet", "SyncNetV2", "syncnet"),
        state_keys=(),
        notes="reference: bare dict of tensors copied name by name (no strictness); retalk loads it strictly",
    ),
    CheckpointSpec(
        name="gfpgan",
        description="GFPGAN v1.3 face restoration (clean architecture, 512x512; v1.4 has the same keys)",
        files=("GFPGANv1.3.pth", "GFPGANv1.4.pth"),
        source=_VRT_RELEASE + "GFPGANv1.3.pth (also released by https://github.com/TencentARC/GFPGAN, v1.3.0, "
               "beside GFPGANv1.4.pth, which SadTalker uses: same 'clean' architecture, channel multiplier 2)",
        factory=partial(_import_class, "retalk.networks.gfpgan", "GFPGANv1Clean", "gfpgan"),
        state_keys=("params_ema", "params"),
        strip_prefixes=(),
        notes="reference (GFPGANer): torch.load(path)['params_ema'] if present else ['params'], strict=True",
    ),
    CheckpointSpec(
        name="dnet",
        description="VideoReTalking D-Net (expression editing, PIRenderer-style)",
        files=("DNet.pt",),
        source=_VRT_RELEASE + "DNet.pt",
        factory=partial(_import_class, "retalk.networks.vrt_dnet", "DNet", "dnet"),
        state_keys=("net_G_ema",),
        notes="reference: torch.load(path)['net_G_ema'], no key edits, strict=False; retalk loads it strictly",
    ),
    CheckpointSpec(
        name="face3d",
        description="Deep3DFaceRecon ResNet-50 (3DMM coefficients; VideoReTalking and SadTalker)",
        files=("face3d_pretrain_epoch_20.pth", "epoch_20.pth",
               "SadTalker_V0.0.2_256.safetensors", "SadTalker_V0.0.2_512.safetensors"),
        source=_VRT_RELEASE + "face3d_pretrain_epoch_20.pth (VideoReTalking), or SadTalker's "
               "https://github.com/OpenTalker/SadTalker/releases/download/v0.0.2-rc/SadTalker_V0.0.2_256.safetensors "
               "(its face_3drecon. keys; legacy: epoch_20.pth of the v0.0.2 release)",
        factory=partial(_import_class, "retalk.networks.face3d", "ReconNet", "face3d"),
        state_keys=("net_recon",),
        select_prefix="face_3drecon.",
        notes="reference: torch.load(path)['net_recon'], strict=True (VRT and SadTalker legacy); SadTalker bundle: "
              "keys containing 'face_3drecon.' with that part removed, strict=True",
    ),
    CheckpointSpec(
        name="gpen",
        description="GPEN-BFR-512 face restoration (StyleGAN2 prior, 512x512)",
        files=("GPEN-BFR-512.pth",),
        source=_VRT_RELEASE + "GPEN-BFR-512.pth",
        factory=partial(_import_class, "retalk.networks.gpen", "FullGenerator", "gpen",
                        512, 512, 8, channel_multiplier=2, narrow=1),
        state_keys=(),
        notes="reference (GPEN FaceGAN): FullGenerator(512, 512, 8, channel_multiplier=2, narrow=1); "
              "bare state dict incl. the 21 FIR 'kernel' buffers, strict=True",
    ),
    CheckpointSpec(
        name="parsenet",
        description="ParseNet face parsing (19 classes, 512x512)",
        files=("ParseNet-latest.pth",),
        source=_VRT_RELEASE + "ParseNet-latest.pth",
        factory=partial(_import_class, "retalk.networks.parsenet", "ParseNet", "parsenet",
                        512, 512, 32, 64, 19, norm_type="bn", relu_type="LeakyReLU", ch_range=(32, 256)),
        state_keys=(),
        notes="reference (GPEN FaceParse): ParseNet(512, 512, 32, 64, 19, norm_type='bn', "
              "relu_type='LeakyReLU', ch_range=[32, 256]); bare state dict, strict=True. facexlib's "
              "parsing_parsenet.pth has the same 238 keys (reference key dumps; the file itself was not "
              "checked), so passing its path here should load it",
    ),
    CheckpointSpec(
        name="ganimation",
        description="GANimation expression generator (VideoReTalking --up_face, 128x128)",
        files=("30_net_gen.pth",),
        source=_VRT_RELEASE + "30_net_gen.pth",
        factory=partial(_import_class, "retalk.networks.ganimation", "SplitGenerator", "ganimation",
                        3, 17, 64, norm="instance", n_blocks=6),
        state_keys=(),
        drop_substrings=(".running_mean", ".running_var", ".num_batches_tracked"),
        notes="reference (ganimation_replicate BaseModel.load_ckpt): bare state dict saved from the "
              "unwrapped model ('module.' stripped here if present), '_metadata' dropped, only keys "
              "the model has are kept, then strict; the instance norms have no state, so retalk "
              "drops stray norm statistics and loads the rest strictly",
    ),
    CheckpointSpec(
        name="lnet",
        description="VideoReTalking L-Net (lip sync at 96x96)",
        files=("LNet.pth",),
        source=_VRT_RELEASE + "LNet.pth",
        factory=partial(_import_class, "retalk.networks.vrt_lnet", "LNet", "lnet"),
        state_keys=("state_dict",),
        drop_substrings=("low_res",),
        notes="reference (models/__init__.py load_checkpoint): ['state_dict'], keys containing 'low_res' "
              "dropped, 'module.' removed, strict=False; retalk loads strictly",
    ),
    CheckpointSpec(
        name="enet",
        description="VideoReTalking E-Net (384x384 enhancement around L-Net)",
        files=("ENet.pth",),
        source=_VRT_RELEASE + "ENet.pth",
        factory=partial(_import_class, "retalk.networks.vrt_enet", "ENet", "enet"),
        state_keys=("state_dict",),
        drop_substrings=("low_res",),
        companions=(("lnet", "low_res."),),
        notes="reference: ENet(lnet=<LNet loaded from LNet.pth>), then ENet.pth loaded like LNet.pth "
              "(['state_dict'], 'low_res' keys dropped, 'module.' removed, strict=False), so low_res.* "
              "comes from LNet.pth; retalk reads both files and loads strictly",
    ),
    CheckpointSpec(
        name="sadtalker_audio2exp",
        description="SadTalker audio-to-expression net SimpleWrapperV2 (64 3DMM expression coefficients per frame)",
        files=(*_ST_BUNDLES, "auido2exp_00300-model.pth"),
        source=f"the SadTalker release (scripts/download_models.sh of https://github.com/OpenTalker/SadTalker): "
               f"{_ST_RELEASE}SadTalker_V0.0.2_256.safetensors (or _512), or the legacy "
               f"{_ST_LEGACY}auido2exp_00300-model.pth",
        factory=partial(_import_class, "retalk.networks.sadtalker_audio2exp", "SimpleWrapperV2",
                        "sadtalker_audio2exp"),
        state_keys=("model",),
        select_prefix="audio2exp.",
        notes="reference: bundle keys containing 'audio2exp.' with it removed, or the legacy file's ['model'] "
              "(load_cpk); strict=True. The 256 and 512 bundles hold the same audio2exp",
    ),
    CheckpointSpec(
        name="sadtalker_audio2pose",
        description="SadTalker audio-to-head-pose CVAE Audio2Pose (46 pose styles)",
        files=(*_ST_BUNDLES, "auido2pose_00140-model.pth"),
        source=f"the SadTalker release (scripts/download_models.sh of https://github.com/OpenTalker/SadTalker): "
               f"{_ST_RELEASE}SadTalker_V0.0.2_256.safetensors (or _512), or the legacy "
               f"{_ST_LEGACY}auido2pose_00140-model.pth",
        factory=partial(_import_class, "retalk.networks.sadtalker_audio2pose", "Audio2Pose",
                        "sadtalker_audio2pose"),
        state_keys=("model",),
        select_prefix="audio2pose.",
        notes="reference: bundle keys containing 'audio2pose.' with it removed, or the legacy file's ['model'] "
              "(load_cpk); strict=True, including the training-only netG.encoder.* and netD_motion.*",
    ),
    CheckpointSpec(
        name="sadtalker_kp_extractor",
        description="SadTalker canonical key-point detector (face renderer, 15 3-D key points)",
        files=(*_ST_BUNDLES, _SADTALKER_LEGACY),
        source=_SADTALKER_SOURCE,
        factory=partial(_import_class, "retalk.networks.sadtalker_kp", "KPDetector", "sadtalker_kp_extractor"),
        state_keys=("kp_detector",),
        select_prefix="kp_extractor.",
        notes="reference: bundle keys containing 'kp_extractor' with 'kp_extractor.' removed, strict; "
              "legacy facevid2vid_00189-model.pth.tar ['kp_detector'], strict",
    ),
    CheckpointSpec(
        name="sadtalker_generator",
        description="SadTalker face renderer (OcclusionAwareSPADEGenerator)",
        files=(*_ST_BUNDLES, _SADTALKER_LEGACY),
        source=_SADTALKER_SOURCE,
        factory=partial(_import_class, "retalk.networks.sadtalker_generator", "OcclusionAwareSPADEGenerator",
                        "sadtalker_generator"),
        state_keys=("generator",),
        select_prefix="generator.",
        notes="reference: bundle keys containing 'generator' with 'generator.' removed, strict; "
              "legacy facevid2vid_00189-model.pth.tar ['generator'], strict",
    ),
    CheckpointSpec(
        name="sadtalker_mapping",
        description="SadTalker mapping net (3DMM window -> head pose and key-point expression)",
        files=("mapping_00229-model.pth.tar", "mapping_00109-model.pth.tar"),
        source=_ST_RELEASE + "mapping_00229-model.pth.tar (crop/resize preprocessing) or "
               "mapping_00109-model.pth.tar (full), from scripts/download_models.sh of "
               "https://github.com/OpenTalker/SadTalker",
        factory=partial(_import_class, "retalk.networks.sadtalker_mapping", "MappingNet", "sadtalker_mapping"),
        state_keys=("mapping",),
        build_args=_mapping_args,
        notes="reference: torch.load(path)['mapping'], strict; "
              "coeff_nc 70 (00229) or 73 (00109) read from first.0.weight",
    ),
)

#: name -> spec, read-only.
REGISTRY: MappingProxyType[str, CheckpointSpec] = MappingProxyType({s.name: s for s in _SPECS})


def names() -> tuple[str, ...]:
    """Registered checkpoint names, in registry order."""
    return tuple(REGISTRY)


def get_spec(name: str) -> CheckpointSpec:
    """The spec registered under ``name``; :class:`CheckpointError` if unknown."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise CheckpointError(
            f"unknown checkpoint name {name!r}; known: {', '.join(REGISTRY)}"
        ) from None
