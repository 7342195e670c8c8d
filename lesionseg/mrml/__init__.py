"""lesionseg.mrml: the bridge to Slicer's scene, and the only part of lesionseg that imports ``slicer``.

Every function takes the MRML scene (``slicer.mrmlScene`` in the application, a ``slicer.vtkMRMLScene()``
in tests with slicer-core) as its first argument and never reaches for application globals, so it runs
the same inside Slicer and outside it. Images are ``SimpleITK.Image`` (origin and direction in LPS);
nodes use RAS; the conversion is exact (see :mod:`lesionseg.mrml.volumes`).

Public API:
    image_from_volume_node, volume_node_from_image, update_volume_node_from_image, geometry_of_volume_node:
        scalar and labelmap volume nodes <-> SimpleITK images.
    image_from_oriented_image, oriented_image_from_image: the Segment Editor's vtkOrientedImageData <->
        SimpleITK images.
    segmentation_node_from_labelmap, write_label_segment, mask_from_segmentation_node, mask_from_segment,
    segment_names, segment_terminology:
        a predicted labelmap -> a "Stroke lesion" segment (colour, terminology, reference geometry, study);
        a named segment (or one given by ID) -> a 0/1 mask.
    probability_volume_node, probability_color_node: probability maps with a colour map over 0..1.
    table_node_from_rows, table_node_from_columns: typed table nodes.
    curve_chart_node, histogram_chart_node: plot series and chart nodes.
    place_beside, subject_hierarchy: subject hierarchy placement.
"""

from lesionseg.mrml.hierarchy import place_beside, subject_hierarchy
from lesionseg.mrml.plots import curve_chart_node, histogram_chart_node, histogram_counts
from lesionseg.mrml.probability import probability_color_node, probability_volume_node
from lesionseg.mrml.segmentation import (
    mask_from_segment,
    mask_from_segmentation_node,
    segment_labelmap,
    segment_names,
    segment_terminology,
    segmentation_node_from_labelmap,
    set_segment_terminology,
    write_label_segment,
)
from lesionseg.mrml.tables import column_array, table_node_from_columns, table_node_from_rows
from lesionseg.mrml.volumes import (
    geometry_of_volume_node,
    image_from_oriented_image,
    image_from_volume_node,
    oriented_image_from_image,
    update_volume_node_from_image,
    volume_node_from_image,
)

__all__ = [
    "column_array", "curve_chart_node", "geometry_of_volume_node", "histogram_chart_node", "histogram_counts",
    "image_from_oriented_image", "image_from_volume_node", "mask_from_segment", "mask_from_segmentation_node",
    "oriented_image_from_image", "place_beside",
    "probability_color_node", "probability_volume_node", "segment_labelmap", "segment_names", "segment_terminology",
    "segmentation_node_from_labelmap", "set_segment_terminology", "subject_hierarchy", "table_node_from_columns",
    "table_node_from_rows", "update_volume_node_from_image", "volume_node_from_image", "write_label_segment",
]
