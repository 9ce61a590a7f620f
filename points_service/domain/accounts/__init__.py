"""Accounts and sign-in.

``users`` keeps console accounts and their role grants (``create_user``, ``grant_role``, ``revoke_grant``,
``list_users``) and disables or enables an account (``disable_user``, ``enable_user``); ``signin`` signs people
in (``console_sign_in``, ``login_with_password``, ``login_with_wechat``, ``bind_wechat``); ``tokens`` issues, rotates
and revokes tokens (``issue_tokens``, ``refresh_tokens``, ``revoke_family``, ``end_sessions``); ``unbinding``
detaches a member's WeChat identity from his account (``unbind_wechat``).
"""
