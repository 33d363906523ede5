from django.contrib import admin

from .models import Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    """Rooms, and who may enter them: no members, a public room."""

    list_display = ["name", "last_number"]
    filter_horizontal = ["members"]
