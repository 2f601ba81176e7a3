from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.static import serve

from trialdesk.edc import views
from trialdesk.edc.accounts import views as accounts
from trialdesk.edc.api import api
from trialdesk.edc.audit import views as audit
from trialdesk.edc.casebook import views as casebook
from trialdesk.edc.dosing import views as dosing
from trialdesk.edc.labs import views as labs
from trialdesk.edc.participants import views as participants
from trialdesk.edc.quality import views as quality
from trialdesk.edc.screening import views as screening
from trialdesk.edc.settings import HERE
from trialdesk.edc.visits import views as visits
from trialdesk.edc.workday import views as workday

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(template_name="edc/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", accounts.password_change, name="password_change"),
    path("users/", accounts.users, name="users"),
    path("screening/", screening.screening_list, name="screening_list"),
    path("screening/import/<str:kind>/", screening.upload, name="screening_upload"),
    path("screening/<str:number>/", screening.detail, name="screening_detail"),
    path("screening/<str:number>/edit/", screening.edit_person, name="screening_edit"),
    path("screening/<str:number>/sign/", screening.sign_off, name="screening_sign"),
    path("screening/<str:number>/rescreen/", screening.rescreen, name="screening_rescreen"),
    path("screening/<str:number>/consent/", participants.consent, name="consent"),
    path("screening/<str:number>/enrol/", participants.enrol, name="enrol"),
    path("participants/", participants.participant_list, name="participants"),
    path("participants/<str:subject_id>/", participants.participant_detail, name="participant_detail"),
    path("participants/<str:subject_id>/withdraw/", participants.withdraw, name="withdraw"),
    path("participants/<str:subject_id>/off-study/", participants.off_study, name="off_study"),
    path("participants/<str:subject_id>/lock/", participants.lock, name="lock"),
    path("participants/<str:subject_id>/casebook/", casebook.casebook, name="casebook"),
    path("participants/<str:subject_id>/casebook/sign/", casebook.sign, name="casebook_sign"),
    path("participants/<str:subject_id>/timeline/", casebook.timeline, name="timeline"),
    path("calendar/", workday.calendar, name="calendar"),
    path("search/", workday.search, name="search"),
    path("participants/<str:subject_id>/cohort/", dosing.assign_cohort, name="cohort_assign"),
    path("participants/<str:subject_id>/cohort/entered-in-error/", views.cohort_entered_in_error, name="cohort_entered_in_error"),
    path("participants/<str:subject_id>/infusions/new/", dosing.new_infusion, name="infusion_new"),
    path("participants/<str:subject_id>/infusions/<int:number>/", dosing.edit_infusion, name="infusion_edit"),
    path("participants/<str:subject_id>/unscheduled-visit/", visits.unscheduled_visit, name="unscheduled_visit"),
    path("participants/<str:subject_id>/visits/<str:code>/", visits.visit, name="visit"),
    path("participants/<str:subject_id>/medications/", visits.medications, name="medications"),
    path("participants/<str:subject_id>/visits/<str:code>/<str:form_id>/not-done/", visits.crf_not_done, name="crf_not_done"),
    path("missing-forms/", visits.missing_forms, name="missing_forms"),
    path("participants/<str:subject_id>/medical-history/", visits.medical_history, name="medical_history"),
    path("participants/<str:subject_id>/visits/<str:code>/<str:form_id>/", visits.crf, name="crf"),
    path("participants/<str:subject_id>/visits/<str:code>/<str:form_id>/entered-in-error/", views.crf_entered_in_error,
         name="crf_entered_in_error"),
    path("participants/<str:subject_id>/infusions/<int:number>/entered-in-error/", views.infusion_entered_in_error,
         name="infusion_entered_in_error"),
    path("adverse-events/<int:pk>/entered-in-error/", views.ae_entered_in_error, name="ae_entered_in_error"),
    path("queries/", quality.queries, name="queries"),
    path("sdv/", quality.sdv, name="sdv"),
    path("sdv/progress/", quality.sdv_progress, name="sdv_progress"),
    path("monitoring-report/", quality.monitoring_report, name="monitoring_report"),
    path("monitoring-report/pdf/", quality.monitoring_report_pdf, name="monitoring_report_pdf"),
    path("labs/ranges/", labs.ranges, name="lab_ranges"),
    path("labs/import/", labs.lab_import, name="lab_import"),
    path("deviations/", quality.deviations, name="deviations"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/verify/", audit.verify, name="audit_verify"),
    path("", include("trialdesk.edc.adverse_events.urls")),
    path("", include("trialdesk.edc.safety.urls")),
    path("", include("trialdesk.edc.exports.urls")),
    path("", include("trialdesk.edc.referrals.urls")),  # public: the study page and self-referral, no login
    path("api/", api.urls),
    # a handful of small files; served by the app so 'trialdesk serve' needs no web server in front
    path("static/<path:path>", serve, {"document_root": HERE / "static"}, name="static"),
]
