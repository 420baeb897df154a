"""Release exports move out of the evidence app into reports: the table keeps its name and rows.

State only: the models were created in the evidence app and their tables stay as they are (DESIGN §3: "tables keep
their names when models move"). `AdoptMovedModels` renames what carries the old app label in the database (constraint
and partial-index names) and moves the content types; `evidence.0005_release_exports_move_to_reports` then drops the old state.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from common.migration_operations import AdoptMovedModels, Renamed


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('approvals', '0003_deployment_digest'),
        ('evidence', '0004_evidence_copies_with_signatures'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ReleaseExport',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('packet', 'PDF release packet'), ('bundle', 'Evidence bundle (zip)')], max_length=10)),
                        ('state', models.CharField(choices=[('queued', 'Queued'), ('rendering', 'Rendering'), ('done', 'Done'), ('failed', 'Failed')], default='queued', max_length=10)),
                        ('progress', models.PositiveSmallIntegerField(default=0, help_text='Percent done while rendering.')),
                        ('release_state_sha256', models.CharField(help_text="Of the release's facts when requested: a later change needs a new rendering.", max_length=64)),
                        ('sha256', models.CharField(blank=True, max_length=64)),
                        ('size', models.BigIntegerField(blank=True, null=True)),
                        ('storage_name', models.CharField(blank=True, max_length=300)),
                        ('error', models.TextField(blank=True)),
                        ('requested_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('release', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='exports', to='approvals.release')),
                        ('requested_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'evidence_releaseexport',
                        'ordering': ['-id'],
                        'indexes': [models.Index(fields=['release', 'kind', 'release_state_sha256'], name='evidence_re_release_d42106_idx')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('kind__in', ['packet', 'bundle'])), name='reports_releaseexport_kind_valid'), models.CheckConstraint(condition=models.Q(('state__in', ['queued', 'rendering', 'done', 'failed'])), name='reports_releaseexport_state_valid'), models.CheckConstraint(condition=models.Q(('progress__lte', 100)), name='reports_releaseexport_progress_percent'), models.CheckConstraint(condition=models.Q(models.Q(('state', 'done'), _negated=True), models.Q(models.Q(('sha256', ''), _negated=True), models.Q(('storage_name', ''), _negated=True)), _connector='OR'), name='reports_releaseexport_done_has_file')],
                    },
                ),
            ],
            database_operations=[
                AdoptMovedModels(
                    from_app="evidence",
                    to_app="reports",
                    models=['ReleaseExport'],
                    renamed=[
                        Renamed("evidence_releaseexport", "evidence_releaseexport_kind_valid", "reports_releaseexport_kind_valid"),
                        Renamed("evidence_releaseexport", "evidence_releaseexport_state_valid", "reports_releaseexport_state_valid"),
                        Renamed("evidence_releaseexport", "evidence_releaseexport_progress_percent", "reports_releaseexport_progress_percent"),
                        Renamed("evidence_releaseexport", "evidence_releaseexport_done_has_file", "reports_releaseexport_done_has_file"),
                    ],
                ),
            ],
        ),
    ]
