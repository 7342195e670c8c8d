"""Texts of the LesionSegCurriculum panel: acknowledgement, case list columns, metric choices (no Qt)."""

ACKNOWLEDGEMENT = """
The curriculum follows J. Moreau et al., "Difficulty metrics study for curriculum-based deep learning in
the context of stroke lesion segmentation", IEEE International Symposium on Biomedical Imaging (ISBI),
2023: training slices are ordered by lesion area, lesion-to-tissue contrast or a gradient-based
difficulty, and introduced from easy to hard. Please cite it, and the other work LesionSeg builds on:
<ul>
<li>Lhermitte et al., on transferring stroke lesion segmentation models trained on adults to children,
IEEE International Symposium on Biomedical Imaging (ISBI), 2024.</li>
<li>Kamraoui et al., on learning a lesion-wise segmentation metric and using it as a training loss.</li>
</ul>
The module builds on <a href="https://monai.io">MONAI</a>, PyTorch and SimpleITK.
"""

#: Columns of the case list, in order.
CASE_COLUMNS = ("Case", "Patient", "Channels", "Mask")
#: The metric choices of the training panel: label -> ``--metric`` names.
METRIC_CHOICES = (
    ("Fisher contrast", ["contrast"]),
    ("Lesion area", ["area"]),
    ("Area and contrast (mean rank)", ["area", "contrast"]),
    ("Gradient difficulty (trains a model first)", ["gradient"]),
    ("Human rating (from the difficulty table)", ["human"]),
)
#: The documentation the help text links to.
DOCUMENTATION_URL = "https://github.com/LesionSeg/SlicerLesionSeg#using-lesionseg-in-3d-slicer"
