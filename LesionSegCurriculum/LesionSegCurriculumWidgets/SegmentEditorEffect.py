"""The "LesionSeg refine" Segment Editor effect: LesionSeg's refinement tools on the selected segment.

Registered by the LesionSegCurriculum module at start-up. The computation is in :mod:`.EffectTools`
(no Qt); this file holds the options panel and hands the result to the editor with
``modifySelectedSegmentByLabelmap``, so that the editor's masking settings and undo apply.
"""

import os

import qt
import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

from LesionSegCurriculumLib.EffectTools import EFFECT_TOOLS, refine_segment

ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Resources", "Icons",
                         "LesionSegCurriculum.png")


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    """Refine the selected segment with an intensity-, GrowCut-, clean-up- or interpolation-based tool."""

    def __init__(self, scriptedEffect):
        scriptedEffect.name = "LesionSeg refine"
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        clonedEffect = effects.qSlicerSegmentEditorScriptedEffect(None)
        clonedEffect.setPythonSource(__file__.replace("\\", "/"))
        return clonedEffect

    def icon(self):
        return qt.QIcon(ICON_PATH) if os.path.exists(ICON_PATH) else qt.QIcon()

    def helpText(self):
        lines = "".join(f"<li><b>{label}</b>: {text}</li>" for label, text in EFFECT_TOOLS.values())
        return ("<html>Refine a rough lesion segment with LesionSeg's tools (one default parameter set, "
                f"whatever the damage).<ul>{lines}</ul>Masking settings and Undo apply as usual.</html>")

    def setupOptionsFrame(self):
        self.toolComboBox = qt.QComboBox()
        for name, (label, text) in EFFECT_TOOLS.items():
            self.toolComboBox.addItem(label, name)
            self.toolComboBox.setItemData(self.toolComboBox.count - 1, text, qt.Qt.ToolTipRole)
        self.scriptedEffect.addLabeledOptionsWidget("Tool:", self.toolComboBox)
        self.applyButton = qt.QPushButton("Apply")
        self.applyButton.objectName = self.__class__.__name__ + "Apply"
        self.applyButton.toolTip = "Replace the selected segment by the refined one (Undo restores it)."
        self.scriptedEffect.addOptionsWidget(self.applyButton)
        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        self.scriptedEffect.addOptionsWidget(self.statusLabel)
        self.applyButton.connect("clicked()", self.onApply)

    def onApply(self):
        from lesionseg.errors import LesionSegError

        parameterSetNode = self.scriptedEffect.parameterSetNode()
        segmentationNode = parameterSetNode.GetSegmentationNode()
        sourceVolume = (parameterSetNode.GetSourceVolumeNode() if hasattr(parameterSetNode, "GetSourceVolumeNode")
                        else parameterSetNode.GetMasterVolumeNode())
        segmentId = parameterSetNode.GetSelectedSegmentID()
        if segmentationNode is None or sourceVolume is None or not segmentId:
            self.statusLabel.text = "Select a segmentation, its source volume and a segment first."
            return
        segmentName = segmentationNode.GetSegmentation().GetSegment(segmentId).GetName()
        try:
            with slicer.util.WaitCursor():
                result = refine_segment(slicer.mrmlScene, segmentationNode, segmentName, sourceVolume,
                                        self.toolComboBox.currentData)
        except LesionSegError as error:
            self.statusLabel.text = str(error)
            return
        self.scriptedEffect.saveStateForUndo()
        self.scriptedEffect.modifySelectedSegmentByLabelmap(
            result.labelmap, slicer.qSlicerSegmentEditorAbstractEffect.ModificationModeSet)
        self.statusLabel.text = result.message
