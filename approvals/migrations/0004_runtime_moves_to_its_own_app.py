"""The runtime record moves out of the approvals app into its own: drop the models from this app's state (the tables stay, now the runtime app's)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0003_deployment_digest'),
        ('runtime', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='deployment',
                    name='artifact',
                ),
                migrations.RemoveField(
                    model_name='deployment',
                    name='decision',
                ),
                migrations.RemoveField(
                    model_name='deployment',
                    name='deployer',
                ),
                migrations.RemoveField(
                    model_name='deployment',
                    name='environment',
                ),
                migrations.RemoveField(
                    model_name='deployment',
                    name='product',
                ),
                migrations.RemoveField(
                    model_name='deployment',
                    name='release',
                ),
                migrations.RemoveField(
                    model_name='driftfinding',
                    name='environment',
                ),
                migrations.RemoveField(
                    model_name='driftfinding',
                    name='opened_by',
                ),
                migrations.RemoveField(
                    model_name='driftfinding',
                    name='product',
                ),
                migrations.RemoveField(
                    model_name='driftfinding',
                    name='resolved_by',
                ),
                migrations.RemoveField(
                    model_name='environmentsnapshot',
                    name='environment',
                ),
                migrations.RemoveField(
                    model_name='environmentsnapshot',
                    name='product',
                ),
                migrations.RemoveField(
                    model_name='environmentsnapshot',
                    name='reported_by',
                ),
                migrations.DeleteModel(
                    name='BreakGlassReview',
                ),
                migrations.DeleteModel(
                    name='Deployment',
                ),
                migrations.DeleteModel(
                    name='DriftFinding',
                ),
                migrations.DeleteModel(
                    name='EnvironmentSnapshot',
                ),
            ],
        ),
    ]
