"""Inference: a bundle and a patient's native volumes in, a lesion mask on the reference grid out.

Public API:
    Predictor: loads a bundle once; ``predict(images, side=...)`` -> Prediction (labelmap, probabilities,
        lesion volume, per-lesion table, record, timings, warnings).
    segment_cases: many cases into a folder with ``summary.csv`` (bad cases reported, not fatal).
    lesion_mask, lesion_table: post-processing pieces.
    write_labelmap, write_probabilities, write_lesion_table: outputs.
"""

from lesionseg.infer.batch import BatchResult, segment_cases
from lesionseg.infer.lesions import lesion_table
from lesionseg.infer.outputs import OUTPUT_FORMATS, write_labelmap, write_lesion_table, write_probabilities
from lesionseg.infer.postprocess import lesion_mask
from lesionseg.infer.predictor import Prediction, Predictor

__all__ = ["BatchResult", "OUTPUT_FORMATS", "Prediction", "Predictor", "lesion_mask", "lesion_table",
           "segment_cases", "write_labelmap", "write_lesion_table", "write_probabilities"]
