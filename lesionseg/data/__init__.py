"""Cases and datasets: discovery of ISLES'22, ISLES'24, ATLAS v2.0, nnU-Net and CSV layouts; folds; exports."""

from lesionseg.data.case import Case
from lesionseg.data.channels import CHANNEL_ALIASES, CT_CHANNELS, PERFUSION_CHANNELS, canonical_channel
from lesionseg.data.discover import detect_layout, discover, select_channels
from lesionseg.data.export import export_manifest, export_nnunet
from lesionseg.data.folds import case_lesion_volumes_ml, folds
from lesionseg.data.validation import lesion_volume_ml, validate_case

__all__ = [
    "CHANNEL_ALIASES", "CT_CHANNELS", "Case", "PERFUSION_CHANNELS", "canonical_channel", "case_lesion_volumes_ml", "detect_layout",
    "discover", "export_manifest", "export_nnunet", "folds", "lesion_volume_ml", "select_channels",
    "validate_case",
]
