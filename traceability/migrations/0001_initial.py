"""Traceability moves out of the core app into its own: its five tables keep their names and rows.

State only: the models were created in the changecontrol app and their tables stay as they are (DESIGN §3: "tables keep
their names when models move"). `AdoptMovedModels` renames what carries the old app label in the database (constraint
and partial-index names) and moves the content types; `changecontrol.0004_traceability_moves_to_its_own_app` then drops the old state.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from common.migration_operations import AdoptMovedModels, Renamed


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('changecontrol', '0003_traceability'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='TraceItem',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('requirement', 'Requirement'), ('hazard', 'Hazard'), ('risk_control', 'Risk control')], max_length=20)),
                        ('identifier', models.CharField(help_text='REQ-017, HAZ-3, RC-5, or the ID of the tool it came from.', max_length=120)),
                        ('title', models.CharField(max_length=500)),
                        ('text', models.TextField(blank=True)),
                        ('status', models.CharField(blank=True, max_length=60)),
                        ('attributes', models.JSONField(blank=True, default=dict)),
                        ('hazardous_situation', models.TextField(blank=True)),
                        ('harm', models.TextField(blank=True)),
                        ('severity', models.CharField(blank=True, max_length=60)),
                        ('probability', models.CharField(blank=True, max_length=60)),
                        ('initial_risk', models.CharField(blank=True, max_length=60)),
                        ('residual_risk', models.CharField(blank=True, max_length=60)),
                        ('acceptability', models.CharField(blank=True, max_length=60)),
                        ('version', models.PositiveIntegerField(default=1)),
                        ('fingerprint', models.CharField(help_text='sha256 of the versioned content (item_formats).', max_length=64)),
                        ('version_created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='trace_items', to='changecontrol.product')),
                    ],
                    options={
                        'db_table': 'changecontrol_traceitem',
                        'ordering': ['product', 'kind', 'identifier'],
                    },
                ),
                migrations.CreateModel(
                    name='ChangeRequestItem',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('change_request', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='item_links', to='changecontrol.changerequest')),
                        ('created_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('item', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='change_links', to='traceability.traceitem')),
                    ],
                    options={
                        'db_table': 'changecontrol_changerequestitem',
                        'ordering': ['change_request', 'item'],
                    },
                ),
                migrations.CreateModel(
                    name='TraceItemVersion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('version', models.PositiveIntegerField()),
                        ('title', models.CharField(max_length=500)),
                        ('text', models.TextField(blank=True)),
                        ('status', models.CharField(blank=True, max_length=60)),
                        ('attributes', models.JSONField(blank=True, default=dict)),
                        ('hazard', models.JSONField(blank=True, default=dict, help_text='The ISO 14971 fields of a hazard, by name.')),
                        ('fingerprint', models.CharField(max_length=64)),
                        ('reason', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('created_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('item', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='versions', to='traceability.traceitem')),
                    ],
                    options={
                        'db_table': 'changecontrol_traceitemversion',
                        'ordering': ['item', 'version'],
                    },
                ),
                migrations.CreateModel(
                    name='TraceLink',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('implements', 'risk control is implemented by requirement'), ('mitigates', 'risk control mitigates hazard'), ('derives_from', 'requirement derives from requirement')], max_length=20)),
                        ('suspect', models.BooleanField(default=False)),
                        ('suspect_since', models.DateTimeField(blank=True, null=True)),
                        ('suspect_reason', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('cleared_at', models.DateTimeField(blank=True, null=True)),
                        ('cleared_comment', models.TextField(blank=True)),
                        ('cleared_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('created_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='trace_links', to='changecontrol.product')),
                        ('source', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='links_out', to='traceability.traceitem')),
                        ('target', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='links_in', to='traceability.traceitem')),
                    ],
                    options={
                        'db_table': 'changecontrol_tracelink',
                        'ordering': ['product', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='TraceBaseline',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('release_version', models.CharField(max_length=100)),
                        ('taken_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('content', models.JSONField()),
                        ('sha256', models.CharField(help_text='Of the canonical JSON of `content`.', max_length=64)),
                        ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='trace_baselines', to='changecontrol.product')),
                        ('taken_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'changecontrol_tracebaseline',
                        'ordering': ['product', '-taken_at'],
                        'constraints': [models.UniqueConstraint(fields=('product', 'release_version'), name='traceability_tracebaseline_unique_release')],
                    },
                ),
                migrations.AddConstraint(
                    model_name='traceitem',
                    constraint=models.UniqueConstraint(fields=('product', 'identifier'), name='traceability_traceitem_unique_identifier'),
                ),
                migrations.AddConstraint(
                    model_name='traceitem',
                    constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['requirement', 'hazard', 'risk_control'])), name='traceability_traceitem_kind_valid'),
                ),
                migrations.AddConstraint(
                    model_name='traceitem',
                    constraint=models.CheckConstraint(condition=models.Q(('version__gte', 1)), name='traceability_traceitem_version_positive'),
                ),
                migrations.AddConstraint(
                    model_name='changerequestitem',
                    constraint=models.UniqueConstraint(fields=('change_request', 'item'), name='traceability_changerequestitem_unique_link'),
                ),
                migrations.AddConstraint(
                    model_name='traceitemversion',
                    constraint=models.UniqueConstraint(fields=('item', 'version'), name='traceability_traceitemversion_unique_version'),
                ),
                migrations.AddConstraint(
                    model_name='tracelink',
                    constraint=models.UniqueConstraint(fields=('source', 'target', 'kind'), name='traceability_tracelink_unique_link'),
                ),
                migrations.AddConstraint(
                    model_name='tracelink',
                    constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['implements', 'mitigates', 'derives_from'])), name='traceability_tracelink_kind_valid'),
                ),
                migrations.AddConstraint(
                    model_name='tracelink',
                    constraint=models.CheckConstraint(condition=models.Q(('source', models.F('target')), _negated=True), name='traceability_tracelink_not_to_itself'),
                ),
                migrations.AddConstraint(
                    model_name='tracelink',
                    constraint=models.CheckConstraint(condition=models.Q(('suspect', False), ('suspect_since__isnull', False), _connector='OR'), name='traceability_tracelink_suspect_has_time'),
                ),
            ],
            database_operations=[
                AdoptMovedModels(
                    from_app="changecontrol",
                    to_app="traceability",
                    models=['TraceItem', 'TraceItemVersion', 'TraceLink', 'ChangeRequestItem', 'TraceBaseline'],
                    renamed=[
                        Renamed("changecontrol_traceitem", "changecontrol_traceitem_unique_identifier", "traceability_traceitem_unique_identifier"),
                        Renamed("changecontrol_traceitem", "changecontrol_traceitem_kind_valid", "traceability_traceitem_kind_valid"),
                        Renamed("changecontrol_traceitem", "changecontrol_traceitem_version_positive", "traceability_traceitem_version_positive"),
                        Renamed("changecontrol_traceitemversion", "changecontrol_traceitemversion_unique_version", "traceability_traceitemversion_unique_version"),
                        Renamed("changecontrol_tracelink", "changecontrol_tracelink_unique_link", "traceability_tracelink_unique_link"),
                        Renamed("changecontrol_tracelink", "changecontrol_tracelink_kind_valid", "traceability_tracelink_kind_valid"),
                        Renamed("changecontrol_tracelink", "changecontrol_tracelink_not_to_itself", "traceability_tracelink_not_to_itself"),
                        Renamed("changecontrol_tracelink", "changecontrol_tracelink_suspect_has_time", "traceability_tracelink_suspect_has_time"),
                        Renamed("changecontrol_changerequestitem", "changecontrol_changerequestitem_unique_link", "traceability_changerequestitem_unique_link"),
                        Renamed("changecontrol_tracebaseline", "changecontrol_tracebaseline_unique_release", "traceability_tracebaseline_unique_release"),
                    ],
                ),
            ],
        ),
    ]
