"""The "Segment a folder" section of the LesionSegInference panel: the headless batch run in the background with
per-case progress, its summary as a table, and a chosen case loaded into the scene. The work is done by
``InferenceLogic.start_folder`` and ``LesionSegInferenceLib.FolderRun``; this class only wires widgets.
"""

import qt
import slicer
from slicer.i18n import tr as _

from LesionSegInferenceLib.FolderRun import FOLDER_COLUMNS, FolderRunParameters, load_case_result, read_summary


class FolderSection:
    """Wires the folder widgets of the panel (``widget.ui``); the bundle and options are the panel's."""

    def __init__(self, widget):
        self.widget = widget
        self.ui = widget.ui
        self.rows = []
        self.running = False
        self.ui.folderTableWidget.setColumnCount(len(FOLDER_COLUMNS))
        self.ui.folderTableWidget.setHorizontalHeaderLabels([_(name) for name in FOLDER_COLUMNS])
        for pathLineEdit in (self.ui.folderInputPathLineEdit, self.ui.folderOutputPathLineEdit):
            pathLineEdit.connect("currentPathChanged(QString)", self.updateButtons)
        self.ui.folderRunButton.connect("clicked(bool)", self.onRun)
        self.ui.folderLoadButton.connect("clicked(bool)", self.onLoad)
        self.ui.folderTableWidget.connect("itemSelectionChanged()", self.updateButtons)
        self.updateButtons()

    def parameters(self):
        panel = self.widget.parameters()
        return FolderRunParameters(
            bundle_path=panel.bundle_path, input_folder=self.ui.folderInputPathLineEdit.currentPath,
            output_folder=self.ui.folderOutputPathLineEdit.currentPath, device=panel.device, side=panel.side,
            tta=panel.tta, threshold=panel.threshold, min_lesion_mm3=panel.min_lesion_mm3,
            fill_holes=panel.fill_holes, skip_existing=self.ui.folderSkipExistingCheckBox.checked)

    def updateButtons(self, *_args):
        busy = self.widget.logic is not None and self.widget.logic.running
        ok, reason = self.parameters().validate()
        self.ui.folderRunButton.text = _("Cancel") if self.running else _("Segment folder")
        self.ui.folderRunButton.enabled = self.running or (ok and not busy)
        self.ui.folderRunButton.toolTip = reason or _("Segment every case of the folder in the background.")
        chosen = self.chosenRow()
        self.ui.folderLoadButton.enabled = chosen is not None and chosen.ok and not self.running

    def chosenRow(self):
        rows = self.ui.folderTableWidget.selectionModel().selectedRows() if self.rows else []
        return self.rows[rows[0].row()] if rows else None

    def onRun(self):
        logic = self.widget.logic
        if self.running:
            logic.cancel()
            self.widget.ui.statusLabel.text = _("Cancelling...")
            return
        if not self.widget.ensureDependencies():
            return
        parameters = self.parameters()
        self.widget.ui.logTextEdit.clear()
        self.widget.ui.progressBar.setRange(0, 0)
        try:
            logic.start_folder(parameters, on_progress=self.onProgress, on_log=self.widget.appendLog,
                               on_finished=lambda result: self.onFinished(result, parameters))
        except Exception as error:
            self.widget.resetProgress()
            self.widget.showException(_("The folder could not be segmented"), error)
            return
        self.running = True
        self.updateButtons()
        self.widget.updateApplyButton()

    def onProgress(self, progress):
        self.widget.onProgress(progress)
        self.showRows(read_summary(self.ui.folderOutputPathLineEdit.currentPath))

    def onFinished(self, result, parameters):
        self.running = False
        self.widget.resetProgress(100 if result.state in ("succeeded", "partial") else 0)
        try:
            rows = read_summary(parameters.output_folder)
            self.showRows(rows)
            failed = [row for row in rows if not row.ok]
            if result.state == "cancelled":
                self.widget.ui.statusLabel.text = _("Cancelled after {count} cases.").format(count=len(rows))
            elif result.state in ("succeeded", "partial"):
                self.widget.ui.statusLabel.text = _("{count} cases segmented, {failed} failed (see their status); "
                                                    "summary.csv is in the output folder.").format(
                    count=len(rows) - len(failed), failed=len(failed))
            else:
                self.widget.showError(result.error, "\n".join(result.log))
        except Exception as error:
            self.widget.showException(_("The folder's summary could not be read"), error)
        self.updateButtons()
        self.widget.updateApplyButton()

    def showRows(self, rows):
        self.rows = list(rows)
        table = self.ui.folderTableWidget
        table.blockSignals(True)
        table.setRowCount(len(self.rows))
        for index, row in enumerate(self.rows):
            for column, text in enumerate(row.cells):
                table.setItem(index, column, qt.QTableWidgetItem(text))
        table.blockSignals(False)
        table.resizeColumnsToContents()

    def onLoad(self):
        row = self.chosenRow()
        if row is None:
            return
        entry = self.widget.currentEntry()
        try:
            with slicer.util.WaitCursor():
                volume, segmentation = load_case_result(
                    slicer.mrmlScene, self.ui.folderInputPathLineEdit.currentPath,
                    self.ui.folderOutputPathLineEdit.currentPath, row.case_id,
                    entry.reference_channel if entry is not None and entry.ok else "")
        except Exception as error:
            self.widget.showException(_("The case could not be loaded"), error)
            return
        slicer.util.setSliceViewerLayers(background=volume, fit=True)
        segmentation.CreateClosedSurfaceRepresentation()
        self.widget.ui.statusLabel.text = _("Loaded {case}.").format(case=row.case_id)
