"""Traceability moves out of the core app into its own: drop the models from this app's state (the tables stay, now the traceability app's)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('changecontrol', '0003_traceability'),
        ('traceability', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='tracebaseline',
                    name='product',
                ),
                migrations.RemoveField(
                    model_name='tracebaseline',
                    name='taken_by',
                ),
                migrations.RemoveField(
                    model_name='traceitem',
                    name='product',
                ),
                migrations.RemoveField(
                    model_name='traceitemversion',
                    name='item',
                ),
                migrations.RemoveField(
                    model_name='tracelink',
                    name='target',
                ),
                migrations.RemoveField(
                    model_name='tracelink',
                    name='source',
                ),
                migrations.RemoveField(
                    model_name='traceitemversion',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='tracelink',
                    name='cleared_by',
                ),
                migrations.RemoveField(
                    model_name='tracelink',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='tracelink',
                    name='product',
                ),
                migrations.DeleteModel(
                    name='ChangeRequestItem',
                ),
                migrations.DeleteModel(
                    name='TraceBaseline',
                ),
                migrations.DeleteModel(
                    name='TraceItem',
                ),
                migrations.DeleteModel(
                    name='TraceItemVersion',
                ),
                migrations.DeleteModel(
                    name='TraceLink',
                ),
            ],
        ),
    ]
