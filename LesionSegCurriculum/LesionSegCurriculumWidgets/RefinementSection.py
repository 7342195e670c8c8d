"""The "Refine masks" section of the LesionSegCurriculum panel: review queue, proposed change, accept or reject,
rate, next case. The work is done by ``LesionSegCurriculumLib.Refinement``; this class only wires widgets.
"""

import qt
import slicer
from slicer.i18n import tr as _

from LesionSegCurriculumLib import (
    QUEUE_COLUMNS,
    RATINGS,
    REFINE_TOOLS,
    RefinementLogic,
    ReviewQueueParameters,
    next_case,
    read_queue,
)
from LesionSegCurriculumWidgets.PanelState import showException


class RefinementSection:
    """Wires the refinement widgets of the panel (``widget.ui``) to a :class:`RefinementLogic`.

    ``widget`` is the module widget: its background-job runner, messages and dependency check are shared.
    """

    def __init__(self, widget):
        self.widget = widget
        self.ui = widget.ui
        self.queue = []
        self.queueCase = None
        self.refinement = None
        self.setup()

    def setup(self):
        self.ui.queueTableWidget.setColumnCount(len(QUEUE_COLUMNS))
        self.ui.queueTableWidget.setHorizontalHeaderLabels([_(name) for name in QUEUE_COLUMNS])
        for name, label in REFINE_TOOLS.items():
            self.ui.refineToolComboBox.addItem(_(label), name)
        self.ui.ratingComboBox.addItem(_("(no rating)"), "")
        for rating in RATINGS:
            self.ui.ratingComboBox.addItem(_(rating), rating)
        self.ui.reviewQueueButton.connect("clicked(bool)", self.onReviewQueueButton)
        self.ui.queueTableWidget.connect("itemSelectionChanged()", self.onQueueSelection)
        self.ui.proposeButton.connect("clicked(bool)", self.onProposeButton)
        self.ui.acceptButton.connect("clicked(bool)", self.onAcceptButton)
        self.ui.rejectButton.connect("clicked(bool)", self.onRejectButton)
        self.ui.markReviewedButton.connect("clicked(bool)", lambda: self.onMarkCase("reviewed"))
        self.ui.flagButton.connect("clicked(bool)", lambda: self.onMarkCase("flagged"))
        self.ui.nextCaseButton.connect("clicked(bool)", self.onNextCase)
        self.ui.datasetPathLineEdit.connect("currentPathChanged(QString)", self.onRefinementDatasetChanged)
        self.ui.revisionsPathLineEdit.connect("currentPathChanged(QString)", self.onRefinementDatasetChanged)

    def reviewQueueParameters(self):
        return ReviewQueueParameters(dataset=self.ui.datasetPathLineEdit.currentPath,
                                     bundle=self.ui.reviewBundlePathLineEdit.currentPath,
                                     revisions_dir=self.ui.revisionsPathLineEdit.currentPath)

    def refinementLogic(self):
        """The refinement logic for the chosen dataset and revisions folder (made anew when they change)."""
        dataset = self.ui.datasetPathLineEdit.currentPath
        revisions = self.ui.revisionsPathLineEdit.currentPath or None
        logic = self.refinement
        if logic is None or logic.dataset != dataset or logic.revisions_dir != revisions:
            if logic is not None:
                logic.clear()
            logic = self.refinement = RefinementLogic(dataset, revisions, scene=slicer.mrmlScene)
        logic.author = self.ui.authorLineEdit.text.strip() or None
        return logic

    def forgetScene(self):
        """The scene is being closed (or the module cleaned up): drop the nodes and the proposal shown."""
        if self.refinement is not None:
            self.refinement.forget_scene()
        self.ui.changeLabel.text = ""

    def onRefinementDatasetChanged(self, *_args):
        if self.refinement is not None:
            self.refinement.clear()
            self.refinement = None
        self.showQueue([])
        self.updateButtons()

    def updateButtons(self):
        running = self.widget.logic.running
        ok, reason = self.reviewQueueParameters().validate()
        queueJob = running and self.widget.jobButton is self.ui.reviewQueueButton
        self.ui.reviewQueueButton.enabled = (ok and not running) or queueJob
        self.ui.reviewQueueButton.text = _("Cancel") if queueJob else _("Rank cases for review")
        self.ui.reviewQueueButton.toolTip = reason
        shown = self.refinement is not None and self.refinement.shown is not None
        self.ui.proposeButton.enabled = self.queueCase is not None
        self.ui.acceptButton.enabled = shown
        self.ui.rejectButton.enabled = shown
        for button in (self.ui.markReviewedButton, self.ui.flagButton):
            button.enabled = self.queueCase is not None
        self.ui.nextCaseButton.enabled = bool(self.queue)

    def onReviewQueueButton(self):
        self.widget.startJob(self.ui.reviewQueueButton, self.widget.logic.review_queue, self.reviewQueueParameters(),
                      self.onReviewQueueDone)

    def onReviewQueueDone(self, result):
        if not result.ok:
            return
        try:
            self.showQueue(read_queue(self.reviewQueueParameters().queue_csv))
        except Exception as error:  # a tool's refusal, or anything unexpected: shown, the section stays usable
            showException(self.widget, _("LesionSeg refinement failed"), error)
            return
        self.widget.showMessage(_("{count} cases ranked; the first needs attention most.").format(count=len(self.queue)))
        if self.queue:
            self.selectQueueCase(self.queue[0].case_id)

    def showQueue(self, rows):
        self.queue = list(rows)
        self.queueCase = None
        table = self.ui.queueTableWidget
        table.blockSignals(True)
        table.setRowCount(len(self.queue))
        for index, row in enumerate(self.queue):
            for column, text in enumerate(row.cells):
                table.setItem(index, column, qt.QTableWidgetItem(text))
        table.blockSignals(False)
        table.resizeColumnsToContents()
        self.updateButtons()

    def selectQueueCase(self, caseId):
        ids = [row.case_id for row in self.queue]
        if caseId in ids:
            self.ui.queueTableWidget.selectRow(ids.index(caseId))

    def onQueueSelection(self):
        rows = self.ui.queueTableWidget.selectionModel().selectedRows()
        self.queueCase = self.queue[rows[0].row()].case_id if rows else None
        if self.refinement is not None:
            self.refinement.reject()
        self.ui.changeLabel.text = ""
        self.updateButtons()

    def onProposeButton(self):
        if self.queueCase is None or not self.widget.ensureDependencies():
            return
        logic = self.refinementLogic()
        try:
            with slicer.util.WaitCursor():
                proposal = logic.propose(self.queueCase, self.ui.refineToolComboBox.currentData)
                shown = logic.show(proposal) if proposal.changed else None
        except Exception as error:  # a tool's refusal, or anything unexpected: shown, the section stays usable
            showException(self.widget, _("LesionSeg refinement failed"), error)
            return
        if shown is None:
            reason = proposal.details.get("reason")
            self.ui.changeLabel.text = _("The tool proposes no change") + (f": {reason}" if reason else ".")
        else:
            slicer.util.setSliceViewerLayers(background=shown.volume, fit=True)
            self.ui.changeLabel.text = _("Proposed: {added:.2f} mL added (green), {removed:.2f} mL removed "
                                         "(magenta).").format(added=shown.added_ml, removed=shown.removed_ml)
        self.updateButtons()

    def onAcceptButton(self):
        try:
            refinement = self.refinementLogic().accept(comment=self.ui.commentLineEdit.text.strip() or None)
        except Exception as error:  # a tool's refusal, or anything unexpected: shown, the section stays usable
            showException(self.widget, _("LesionSeg refinement failed"), error)
            return
        if refinement.revision is not None:
            self.widget.showMessage(_("{case}: stored {revision} (from {source}).").format(
                case=self.queueCase, revision=refinement.revision.id, source=refinement.source))
        self.ui.changeLabel.text = ""
        self.updateButtons()

    def onRejectButton(self):
        self.refinementLogic().reject()
        self.ui.changeLabel.text = _("Change rejected; nothing was stored.")
        self.updateButtons()

    def onMarkCase(self, status):
        if self.queueCase is None:
            return
        try:
            mark = self.refinementLogic().rate(self.queueCase, status, rating=self.ui.ratingComboBox.currentData,
                                               comment=self.ui.commentLineEdit.text.strip() or None)
        except Exception as error:  # a tool's refusal, or anything unexpected: shown, the section stays usable
            showException(self.widget, _("LesionSeg refinement failed"), error)
            return
        self.widget.showMessage(_("{case} marked {status}{rating}.").format(
            case=self.queueCase, status=mark.status, rating=f" ({mark.rating})" if mark.rating else ""))
        self.ui.commentLineEdit.text = ""
        self.onNextCase()

    def onNextCase(self):
        following = next_case(self.queue, self.queueCase)
        if following is not None:
            self.selectQueueCase(following)
