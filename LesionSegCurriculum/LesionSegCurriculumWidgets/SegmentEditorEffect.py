"""The "LesionSeg refine" Segment Editor effect: LesionSeg's refinement tools on the selected segment.

Registered by the LesionSegCurriculum module at start-up. The computation is in
``LesionSegCurriculumLib.EffectTools`` (no Qt); this file holds the options panel. Apply checks the Python
packages as the panels do (asking before installing), refines the editor's own images of the source volume and
the selected segment (by its ID; transforms applied), and hands the result to the editor with
``modifySelectedSegmentByLabelmap``, so that the editor's masking settings and undo apply. Every failure is
shown to the user in a dialog and on the status line.
"""

import os

import qt
import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

from LesionSegCurriculumLib.EffectTools import EFFECT_TOOLS, apply_effect, refine_labelmap

__all__ = ["SegmentEditorEffect"]

MODULE_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(MODULE_FOLDER, "Resources", "Icons", "LesionSegCurriculum.png")


def ensureDependencies():
    """The panels' dependency check (asks before installing; never installs in testing mode): ``(ok, reason)``."""
    from LesionSegInferenceLib.InstallLogic import slicer_install_logic

    install = slicer_install_logic(MODULE_FOLDER)
    if install is None:
        return True, ""
    with slicer.util.WaitCursor():
        return install.ensure()


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    """Refine the selected segment with an intensity-, GrowCut-, clean-up- or interpolation-based tool."""

    def __init__(self, scriptedEffect):
        scriptedEffect.name = "LesionSeg refine"
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self.dependenciesReady = False

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

    def checkDependencies(self):
        if self.dependenciesReady:
            return True, ""
        ok, reason = ensureDependencies()
        self.dependenciesReady = ok
        return ok, reason

    def onApply(self):
        parameterSetNode = self.scriptedEffect.parameterSetNode()
        segmentationNode = parameterSetNode.GetSegmentationNode() if parameterSetNode is not None else None
        segmentId = parameterSetNode.GetSelectedSegmentID() if parameterSetNode is not None else ""
        sourceImage = self.scriptedEffect.sourceVolumeImageData()
        if segmentationNode is None or sourceImage is None or not segmentId:
            self.statusLabel.text = "Select a segmentation, its source volume and a segment first."
            return
        segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
        segmentName = f"the segment '{segment.GetName()}'" if segment is not None else "the selected segment"
        tool = self.toolComboBox.currentData

        def refine():
            with slicer.util.WaitCursor():
                return refine_labelmap(sourceImage, self.scriptedEffect.selectedSegmentLabelmap(), tool,
                                       segment_name=segmentName)

        outcome = apply_effect(refine, self.checkDependencies)
        self.statusLabel.text = outcome.message
        if outcome.failed:
            slicer.util.errorDisplay(outcome.message, detailedText=outcome.details or None,
                                     windowTitle="LesionSeg refine")
            return
        self.scriptedEffect.saveStateForUndo()
        self.scriptedEffect.modifySelectedSegmentByLabelmap(
            outcome.result.labelmap, slicer.qSlicerSegmentEditorAbstractEffect.ModificationModeSet)
