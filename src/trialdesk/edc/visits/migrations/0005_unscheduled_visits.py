from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("visits", "0004_form_not_done_with_reason"),
    ]

    operations = [
        migrations.AddField(
            model_name="visit",
            name="unscheduled",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="visit",
            name="unscheduled_reason",
            field=models.TextField(blank=True, verbose_name="reason for the unscheduled visit"),
        ),
    ]
