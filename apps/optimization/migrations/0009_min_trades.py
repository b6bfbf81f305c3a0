"""A job's (and a template's) ``min_trades``: runs with fewer closed trades are never ranked.

Jobs and templates stored before get 1, not the new default of 30: their best tables keep every
run that traded (only zero-trade runs, which were never a real answer, stop being ranked), and
their stored best run is not touched.
"""

import django.core.validators
from django.db import migrations, models

HELP = "Runs with fewer closed trades are never ranked best, starred or applied"


def field(default: int) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        default=default,
        validators=[
            django.core.validators.MinValueValidator(1),
            django.core.validators.MaxValueValidator(100000),
        ],
        help_text=HELP,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("optimization", "0008_chunk_process"),
    ]

    operations = [
        migrations.AddField(
            model_name=model,
            name="min_trades",
            field=field(1),
        )
        for model in ("jobtemplate", "optimizationjob")
    ] + [
        migrations.AlterField(
            model_name=model,
            name="min_trades",
            field=field(30),
        )
        for model in ("jobtemplate", "optimizationjob")
    ]
