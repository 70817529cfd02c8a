from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models


class EmailUserManager(UserManager["User"]):
    """``create_user(email, password)``: the login is the e-mail address."""

    def _create_user_object(self, email: str, password: str | None, **extra: Any) -> User:  # type: ignore[override]
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        return user

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:  # type: ignore[override]
        user = self._create_user_object(email, password, **extra)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:  # type: ignore[override]
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:  # type: ignore[override]
        return self._create_user(email, password, is_staff=True, is_superuser=True, **extra)


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = EmailUserManager()  # type: ignore[misc]

    class Meta:
        db_table = "custom_user_account"
