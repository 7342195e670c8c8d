"""Texts of the LesionSegInference panel: acknowledgement, documentation link, lesion table headers (no Qt)."""

ACKNOWLEDGEMENT = """
LesionSeg implements published methods for stroke lesion segmentation. If you use it in your research,
please cite the work it builds on:
<ul>
<li>J. Moreau et al., "Difficulty metrics study for curriculum-based deep learning in the context of
stroke lesion segmentation", IEEE International Symposium on Biomedical Imaging (ISBI), 2023.</li>
<li>Lhermitte et al., on transferring stroke lesion segmentation models trained on adults to children,
IEEE International Symposium on Biomedical Imaging (ISBI), 2024.</li>
<li>Kamraoui et al., on learning a lesion-wise segmentation metric and using it as a training loss.</li>
</ul>
The module builds on <a href="https://monai.io">MONAI</a>, PyTorch and SimpleITK.
"""

#: Headers of the lesion table, for the columns of ``display_rows``.
LESION_HEADERS = (("lesion", "Lesion"), ("volume_ml", "Volume (mL)"), ("hemisphere", "Side"),
                  ("mean_probability", "Mean prob."), ("centroid_r_mm", "R (mm)"), ("centroid_a_mm", "A (mm)"),
                  ("centroid_s_mm", "S (mm)"))
#: Milliseconds the threshold slider must rest before the segment is recomputed.
RETHRESHOLD_DELAY_MS = 250
#: The documentation the help text links to.
DOCUMENTATION_URL = "https://github.com/LesionSeg/SlicerLesionSeg#using-lesionseg-in-3d-slicer"
