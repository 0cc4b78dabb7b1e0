#!/usr/bin/env python3
"""SMTP test client for the relay tests: a real client in its own process.

Reads a JSON script on stdin: {"host": ..., "port": ..., "steps": [[op, args...], ...]}
and prints a JSON list with one [code, text] per reply (the greeting first).
A dropped connection is [-1, "disconnected"] and ends the script.

ops: ehlo NAME | helo NAME | auth_plain USER PASS | mail ADDR [PARAMS] |
     rcpt ADDR | data MESSAGE | cmd LINE | raw TEXT (sent as is) |
     starttls | quit
"""
import base64
import json
import smtplib
import ssl
import sys


def norm(r):
    code, text = r
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [code, text]


def main():
    script = json.load(sys.stdin)
    out = []
    s = smtplib.SMTP(timeout=script.get("timeout", 20))
    try:
        out.append(norm(s.connect(script["host"], script["port"])))
        s._host = script["host"]  # starttls needs it; connect() alone does not set it
        for step in script["steps"]:
            op, args = step[0], step[1:]
            if op == "ehlo":
                r = s.ehlo(args[0])
            elif op == "helo":
                r = s.helo(args[0])
            elif op == "auth_plain":
                tok = base64.b64encode(("\0%s\0%s" % (args[0], args[1])).encode()).decode()
                r = s.docmd("AUTH", "PLAIN " + tok)
            elif op == "mail":
                r = s.docmd("MAIL", "FROM:<%s>%s" % (args[0], (" " + args[1]) if len(args) > 1 else ""))
            elif op == "rcpt":
                r = s.docmd("RCPT", "TO:<%s>" % args[0])
            elif op == "data":
                try:
                    r = s.data(args[0].encode())
                except smtplib.SMTPDataError as e:
                    r = (e.smtp_code, e.smtp_error)
            elif op == "cmd":
                s.send(args[0] + "\r\n")
                r = s.getreply()
            elif op == "raw":
                s.send(args[0])
                r = s.getreply()
            elif op == "starttls":
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                r = s.starttls(context=ctx)
            elif op == "quit":
                r = s.docmd("QUIT")
            else:
                raise SystemExit("unknown op " + op)
            out.append(norm(r))
    except (smtplib.SMTPServerDisconnected, ConnectionError, OSError):
        out.append([-1, "disconnected"])
    print(json.dumps(out))


main()
