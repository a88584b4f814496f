"""The text job of the messaging example, run by skein serve's exec kind.

It continues the task skein gave it in SKEIN_TASK_ID, so its messages land in
the job's attempt, in the same tree as the request that caused it.
"""
import json
import os
import sys

from eliot import Action, log_message, start_action, to_file

to_file(sys.stdout)

user_id = int(os.environ["MESSAGING_USER_ID"])
message_id = os.environ["MESSAGING_MESSAGE_ID"]

with Action.continue_task(task_id=os.environ["SKEIN_TASK_ID"]):
    with start_action(action_type="send_text_message", user_id=user_id, message_id=message_id):
        with open(os.environ["MESSAGING_USERS"]) as f:
            prefs = json.load(f)[str(user_id)]
        if not prefs["text"]:
            log_message(message_type="user has text notifications disabled", log_level="WARN", user_id=user_id)
        else:
            log_message(message_type="text sent", log_level="INFO", user_id=user_id)
