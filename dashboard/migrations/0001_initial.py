from django.db import migrations, models

PERMISSIONS = [
    ("view_dashboard", "Can watch the supervisor dashboard"),
    ("operate_dashboard", "Can change agent status and run simulations from the dashboard"),
]


def create_supervisors_group(apps, schema_editor):
    """The Supervisors group with the dashboard's permissions, in every tenant schema. Permissions
    are created here rather than left to post_migrate, so that the group holds them at once."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="dashboard", model="dashboardaccess")
    group, _ = Group.objects.get_or_create(name="Supervisors")
    for codename, name in PERMISSIONS:
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        group.permissions.add(permission)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="DashboardAccess",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ],
            options={
                "managed": False,
                "default_permissions": (),
                "permissions": PERMISSIONS,
            },
        ),
        migrations.RunPython(create_supervisors_group, migrations.RunPython.noop),
    ]
