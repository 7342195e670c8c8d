"""LesionSegCurriculum: prepare a stroke dataset and train a segmentation model with curriculum learning.

This file only holds the module's metadata, the panel's wiring and the self-test; the logic is in
``LesionSegCurriculumLib`` and the science in the ``lesionseg`` package.
"""

import qt
import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from LesionSegCurriculumLib import CurriculumLogic

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


class LesionSegCurriculum(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LesionSeg Curriculum")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["LesionSeg developers"]
        self.parent.helpText = _(
            "Prepare a stroke lesion dataset (ISLES'22, ATLAS v2.0, an nnU-Net raw dataset or a CSV "
            "manifest) and train a segmentation model with curriculum learning: training slices are "
            "ordered by difficulty and introduced from easy to hard. For now the panel lists and checks "
            "the cases of a dataset; preparation and training come in a later version."
        )
        self.parent.acknowledgementText = _(ACKNOWLEDGEMENT)


class LesionSegCurriculumWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: dataset folder, case list, Prepare and Train, progress and log."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LesionSegCurriculum.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = CurriculumLogic()

        self.ui.casesTableWidget.setColumnCount(len(CASE_COLUMNS))
        self.ui.casesTableWidget.setHorizontalHeaderLabels([_(name) for name in CASE_COLUMNS])
        notYet = _("Available in a later version of LesionSeg.")
        for button in (self.ui.prepareButton, self.ui.trainButton):
            button.enabled = False
            button.toolTip = notYet

        self.ui.datasetPathLineEdit.connect("currentPathChanged(QString)", self.updateListCasesButton)
        self.ui.listCasesButton.connect("clicked(bool)", self.onListCasesButton)

        self.ui.progressBar.setValue(0)
        self.updateListCasesButton()

    def cleanup(self):
        self.removeObservers()

    def updateListCasesButton(self, *_args):
        ok, reason = self.logic.validate_dataset_path(self.ui.datasetPathLineEdit.currentPath)
        self.ui.listCasesButton.enabled = ok
        self.ui.statusLabel.text = reason

    def onListCasesButton(self):
        try:
            from lesionseg.errors import LesionSegError
        except ImportError as error:
            self.showMessage(_("The lesionseg package cannot be imported ({error}); reinstall the LesionSeg "
                               "extension.").format(error=error))
            return
        path = self.ui.datasetPathLineEdit.currentPath
        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            rows = self.logic.list_cases(path)
        except LesionSegError as error:
            self.showRows([])
            self.showMessage(str(error))
            return
        finally:
            qt.QApplication.restoreOverrideCursor()
        self.showRows(rows)
        self.showMessage(self.logic.summarize(rows))

    def showRows(self, rows):
        """Fill the case list with ``CaseRow`` objects."""
        table = self.ui.casesTableWidget
        table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            cells = (row.case_id, row.patient_id, row.channels_text, _("yes") if row.has_mask else _("no"))
            for column, text in enumerate(cells):
                table.setItem(index, column, qt.QTableWidgetItem(text))
        table.resizeColumnsToContents()

    def showMessage(self, message):
        self.ui.statusLabel.text = message
        self.ui.logTextEdit.appendPlainText(message)


class LesionSegCurriculumTest(ScriptedLoadableModuleTest):
    """Self-test run inside Slicer: the package imports and the logic rejects a missing dataset.

    Listing, preparing and training on a synthetic cohort come with the curriculum issues.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_lesionseg_imports()
        self.test_missing_dataset_is_reported()

    def test_lesionseg_imports(self):
        import lesionseg

        self.assertTrue(lesionseg.__version__)

    def test_missing_dataset_is_reported(self):
        from lesionseg.errors import InputFileError

        logic = CurriculumLogic()
        ok, reason = logic.validate_dataset_path("")
        self.assertFalse(ok)
        self.assertIn("dataset folder", reason)
        missing = slicer.app.temporaryPath + "/LesionSegCurriculumTest-no-such-folder"
        with self.assertRaises(InputFileError):
            logic.list_cases(missing)
