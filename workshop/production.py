"""Serve a step the way production does, on this machine (make step5).

    python -m workshop.production 5                 2 uvicorn workers on Redis, port 8000
    python -m workshop.production 5 --memory        the same on the in-memory layer
    python -m workshop.production 5 --nginx 8080    and nginx in front, on port 8080

The settings read their secrets and switches from the environment
(local_settings() gives safe local values). Before serving: migrate
and collectstatic, as a deploy does. Redis is found or started as for step 4.
"""
import argparse
import os
import secrets
import subprocess
import sys

from .nginx import HOW_TO_GET_NGINX, NginxServer, find_nginx
from .redis import redis_available
from .servers import uvicorn_command
from .steps import DEFAULT_REDIS_URL, USERS, step_folder


def local_settings():
    """What step 5's settings read from the environment, with safe local values:
    a fresh secret key each run, and only this machine's own names as hosts."""
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }


def prepare(project, env):
    """What a deploy runs before starting the servers."""
    manage = [sys.executable, "manage.py"]
    for command in (["migrate"], ["collectstatic", "--noinput"]):
        subprocess.run([*manage, *command, "--verbosity", "0"], cwd=project, env=env, check=True)


def serve(step, port, workers, memory, nginx_port):
    project = step_folder(step)
    env = {**os.environ, **local_settings()}
    if memory:
        env["DJANGO_SETTINGS_MODULE"] = "mysite.settings_memory"
    prepare(project, env)
    address = f"http://127.0.0.1:{nginx_port or port}/chat/lobby/"
    print(f"\n  {project.name}: {workers} uvicorn workers on port {port}"
          + (" with the in-memory layer" if memory else ", sharing Redis")
          + (f", nginx in front on port {nginx_port}" if nginx_port else "")
          + f"\n  Open {address} in several windows (Ctrl-C stops it all)\n", flush=True)
    command = uvicorn_command(port, workers)
    if nginx_port:
        with NginxServer(project, upstream_port=port, port=nginx_port):
            return subprocess.call(command, cwd=project, env=env)
    return subprocess.call(command, cwd=project, env=env)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", type=int)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help="in-memory layer: a split room")
    parser.add_argument("--nginx", type=int, metavar="PORT", help="run nginx in front on PORT")
    args = parser.parse_args(argv)
    if args.nginx and find_nginx() is None:
        print(HOW_TO_GET_NGINX, file=sys.stderr)
        return 1
    try:
        # From step 8 on, who is here and the flood counters live in Redis,
        # whichever the layer.
        if args.memory and args.step < USERS:
            return serve(args.step, args.port, args.workers, True, args.nginx)
        with redis_available(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)):
            return serve(args.step, args.port, args.workers, args.memory, args.nginx)
    except RuntimeError as error:  # no Redis, nginx would not start, ...
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
