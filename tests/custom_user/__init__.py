"""A host's own user model (``AUTH_USER_MODEL = "custom_user.User"``): a UUID primary key and
the e-mail address as the login, unlike ``auth.User`` in every way the app could depend on."""
