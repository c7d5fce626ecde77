"""The laptop commands (`bik-sync push`, `check`, `status`): front doors to the same engine as the Lambdas.

``common`` holds what they share (token sources, the URL policy, exit codes), ``progress`` the
progress display, ``journal`` push's record of what BIK settled, ``push_run`` a push itself.
"""
