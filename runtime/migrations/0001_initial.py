"""The runtime record moves out of the approvals app into its own: its four tables keep their names and rows.

State only: the models were created in the approvals app and their tables stay as they are (DESIGN §3: "tables keep
their names when models move"). `AdoptMovedModels` renames what carries the old app label in the database (constraint
and partial-index names) and moves the content types; `approvals.0004_runtime_moves_to_its_own_app` then drops the old state.
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
        ('changecontrol', '0003_traceability'),
        ('evidence', '0004_evidence_copies_with_signatures'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Deployment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('digest', models.CharField(help_text='What was deployed, registered or not: sha256:<64 hex>.', max_length=71)),
                        ('pipeline_url', models.CharField(blank=True, max_length=500)),
                        ('deployed_at', models.DateTimeField(default=django.utils.timezone.now, help_text='Server UTC time the fact was recorded.')),
                        ('kind', models.CharField(choices=[('normal', 'Normal'), ('rollback', 'Rollback'), ('break_glass', 'Break-glass')], default='normal', max_length=12)),
                        ('justification', models.TextField(blank=True)),
                        ('decision_snapshot', models.JSONField(default=dict, help_text='The status answer at the moment of deployment.')),
                        ('authorised', models.BooleanField()),
                        ('reasons', models.JSONField(default=list)),
                        ('artifact', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='deployments', to='evidence.artifact')),
                        ('decision', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='approvals.decision')),
                        ('deployer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('environment', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deployments', to='changecontrol.environment')),
                        ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deployments', to='changecontrol.product')),
                        ('release', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='deployments', to='approvals.release')),
                    ],
                    options={
                        'db_table': 'approvals_deployment',
                        'ordering': ['-deployed_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='BreakGlassReview',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('due_at', models.DateTimeField()),
                        ('state', models.CharField(choices=[('due', 'Due'), ('reviewed', 'Reviewed')], default='due', max_length=10)),
                        ('findings', models.TextField(blank=True)),
                        ('reviewed_at', models.DateTimeField(blank=True, null=True)),
                        ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='changecontrol.product')),
                        ('reviewer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('signature', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='changecontrol.signature')),
                        ('deployment', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='review', to='runtime.deployment')),
                    ],
                    options={
                        'db_table': 'approvals_breakglassreview',
                        'ordering': ['due_at', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='EnvironmentSnapshot',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('taken_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('artifacts', models.JSONField(default=list, help_text='[{name, digest}] sorted by digest.')),
                        ('sha256', models.CharField(help_text='sha256 of the sorted running set.', max_length=64)),
                        ('last_reported_at', models.DateTimeField(default=django.utils.timezone.now, help_text='The latest report of this same set.')),
                        ('environment', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='snapshots', to='changecontrol.environment')),
                        ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='changecontrol.product')),
                        ('reported_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'approvals_environmentsnapshot',
                        'ordering': ['-taken_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='DriftFinding',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('digest', models.CharField(max_length=71)),
                        ('name', models.CharField(blank=True, max_length=300)),
                        ('kind', models.CharField(choices=[('unapproved', 'Running but never approved here'), ('unknown_provenance', 'Running but never registered by a build'), ('missing', 'Approved deployment not running')], max_length=20)),
                        ('state', models.CharField(choices=[('open', 'Open'), ('resolved', 'Resolved')], default='open', max_length=10)),
                        ('opened_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('resolved_at', models.DateTimeField(blank=True, null=True)),
                        ('environment', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='drift_findings', to='changecontrol.environment')),
                        ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='changecontrol.product')),
                        ('opened_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='opened_findings', to='runtime.environmentsnapshot')),
                        ('resolved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='resolved_findings', to='runtime.environmentsnapshot')),
                    ],
                    options={
                        'db_table': 'approvals_driftfinding',
                        'ordering': ['-opened_at', '-id'],
                    },
                ),
                migrations.AddIndex(
                    model_name='deployment',
                    index=models.Index(fields=['environment', '-deployed_at'], name='approvals_d_environ_e4d004_idx'),
                ),
                migrations.AddIndex(
                    model_name='deployment',
                    index=models.Index(fields=['product', '-deployed_at'], name='approvals_d_product_009595_idx'),
                ),
                migrations.AddIndex(
                    model_name='deployment',
                    index=models.Index(fields=['artifact', 'environment', 'authorised'], name='approvals_d_artifac_d55f02_idx'),
                ),
                migrations.AddConstraint(
                    model_name='deployment',
                    constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['normal', 'rollback', 'break_glass'])), name='runtime_deployment_kind_valid'),
                ),
                migrations.AddConstraint(
                    model_name='deployment',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'break_glass'), _negated=True), models.Q(('justification', ''), _negated=True), _connector='OR'), name='runtime_deployment_break_glass_justified'),
                ),
                migrations.AddConstraint(
                    model_name='deployment',
                    constraint=models.CheckConstraint(condition=models.Q(('digest__regex', '^sha256:[0-9a-f]{64}$')), name='runtime_deployment_digest_format'),
                ),
                migrations.AddConstraint(
                    model_name='deployment',
                    constraint=models.CheckConstraint(condition=models.Q(('artifact__isnull', False), ('authorised', False), _connector='OR'), name='runtime_deployment_unregistered_unauthorised'),
                ),
                migrations.AddIndex(
                    model_name='breakglassreview',
                    index=models.Index(fields=['state', 'due_at'], name='approvals_b_state_a8a217_idx'),
                ),
                migrations.AddConstraint(
                    model_name='breakglassreview',
                    constraint=models.CheckConstraint(condition=models.Q(('state__in', ['due', 'reviewed'])), name='runtime_breakglassreview_state_valid'),
                ),
                migrations.AddConstraint(
                    model_name='breakglassreview',
                    constraint=models.CheckConstraint(condition=models.Q(('state', 'due'), models.Q(('reviewer__isnull', False), ('reviewed_at__isnull', False), ('signature__isnull', False), models.Q(('findings', ''), _negated=True)), _connector='OR'), name='runtime_breakglassreview_reviewed_is_signed'),
                ),
                migrations.AddIndex(
                    model_name='environmentsnapshot',
                    index=models.Index(fields=['environment', '-taken_at'], name='approvals_e_environ_b87aec_idx'),
                ),
                migrations.AddIndex(
                    model_name='driftfinding',
                    index=models.Index(fields=['environment', 'state'], name='approvals_d_environ_693118_idx'),
                ),
                migrations.AddConstraint(
                    model_name='driftfinding',
                    constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['unapproved', 'unknown_provenance', 'missing'])), name='runtime_driftfinding_kind_valid'),
                ),
                migrations.AddConstraint(
                    model_name='driftfinding',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('state', 'open'), ('resolved_at__isnull', True)), models.Q(('state', 'resolved'), ('resolved_at__isnull', False)), _connector='OR'), name='runtime_driftfinding_resolved_has_time'),
                ),
                migrations.AddConstraint(
                    model_name='driftfinding',
                    constraint=models.UniqueConstraint(condition=models.Q(('state', 'open')), fields=('environment', 'digest', 'kind'), name='runtime_driftfinding_one_open'),
                ),
            ],
            database_operations=[
                AdoptMovedModels(
                    from_app="approvals",
                    to_app="runtime",
                    models=['Deployment', 'EnvironmentSnapshot', 'DriftFinding', 'BreakGlassReview'],
                    renamed=[
                        Renamed("approvals_deployment", "approvals_deployment_kind_valid", "runtime_deployment_kind_valid"),
                        Renamed("approvals_deployment", "approvals_deployment_break_glass_justified", "runtime_deployment_break_glass_justified"),
                        Renamed("approvals_deployment", "approvals_deployment_digest_format", "runtime_deployment_digest_format"),
                        Renamed("approvals_deployment", "approvals_deployment_unregistered_unauthorised", "runtime_deployment_unregistered_unauthorised"),
                        Renamed("approvals_driftfinding", "approvals_driftfinding_kind_valid", "runtime_driftfinding_kind_valid"),
                        Renamed("approvals_driftfinding", "approvals_driftfinding_resolved_has_time", "runtime_driftfinding_resolved_has_time"),
                        Renamed("approvals_driftfinding", "approvals_driftfinding_one_open", "runtime_driftfinding_one_open", is_index=True),
                        Renamed("approvals_breakglassreview", "approvals_breakglassreview_state_valid", "runtime_breakglassreview_state_valid"),
                        Renamed("approvals_breakglassreview", "approvals_breakglassreview_reviewed_is_signed", "runtime_breakglassreview_reviewed_is_signed"),
                    ],
                ),
            ],
        ),
    ]
