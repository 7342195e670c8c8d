"""The "Export DICOM SEG..." button of the LesionSegInference panel's results: the lesion segment written as a
DICOM Segmentation that refers to the DICOM series the input volume was loaded from. The work is done by
``InferenceLogic.export_dicom_seg`` (``LesionSegInferenceLib.DicomSegExport``); this class only wires the button.
"""

import os

import qt
import slicer
from slicer.i18n import tr as _


class DicomExportSection:
    """Wires the export button of the panel (``widget.ui``) to the panel's logic and its last result."""

    def __init__(self, widget):
        self.widget = widget
        self.ui = widget.ui
        self.ui.exportDicomSegButton.connect("clicked(bool)", self.onExport)
        self.updateButtons()

    def updateButtons(self, *_args):
        logic = self.widget.logic
        ok, reason = logic.dicom_export_readiness() if logic is not None else (False, "")
        self.ui.exportDicomSegButton.enabled = ok and not logic.running
        self.ui.exportDicomSegButton.toolTip = reason or _(
            "Write the lesion segment as a DICOM Segmentation that refers to the input's DICOM series.")

    def onExport(self):
        result = self.widget.logic.result
        name = result.reference_volume.GetName() if result is not None else "lesion"
        default = os.path.join(slicer.app.defaultScenePath, f"{name} lesion SEG.dcm")
        path = qt.QFileDialog.getSaveFileName(slicer.util.mainWindow(), _("Export DICOM SEG"), default,
                                              _("DICOM files (*.dcm);;All files (*)"))
        if not path:
            return
        try:
            with slicer.util.WaitCursor():
                written = self.widget.logic.export_dicom_seg(path, slicer.dicomDatabase.fileForInstance)
        except Exception as error:  # a refusal (one sentence) or a bug: both go to the dialog
            self.widget.showException(_("The DICOM SEG could not be written"), error)
            return
        message = _("Wrote {path}; import it in the DICOM module to view it or send it on.").format(path=written)
        self.ui.statusLabel.text = message
        self.widget.appendLog(message)
