"""Release exports move out of the evidence app into reports: drop the models from this app's state (the tables stay, now the reports app's)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('evidence', '0004_evidence_copies_with_signatures'),
        ('reports', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='ReleaseExport',
                ),
            ],
        ),
    ]
