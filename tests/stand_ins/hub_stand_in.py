"""A stand-in Hugging Face Hub on 127.0.0.1 that the real, unmodified clients reach through HF_ENDPOINT."""

# Hand-written: no library serves the Hub's HTTP API offline (huggingface_hub ships only the client side).

from __future__ import annotations

import base64
import functools
import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

READ_TOKEN = "hf_stand_in_read"
WRITE_TOKEN = "hf_stand_in_write"
NO_ACCESS_TOKEN = "hf_stand_in_no_access"  # a read token whose account has not accepted any gated licence
USER = "lan"  # the account every token belongs to
ROLES = {READ_TOKEN: "read", WRITE_TOKEN: "write", NO_ACCESS_TOKEN: "read"}
DATE = "2024-01-01T00:00:00.000Z"  # the Hub's date format, for every date it reports


def publish(root: Path, repo_id: str, folder: Path, repo_type: str = "model") -> Path:
    """Copies `folder`'s files into the repository `repo_id` under `root`; returns the repository's folder."""
    target = Path(root) / f"{repo_type}s" / repo_id
    shutil.copytree(folder, target, dirs_exist_ok=True)
    return target


@functools.lru_cache(maxsize=4096)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """A file's sha256, computed once per version (size and modification time)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(path: Path) -> str:
    stat = path.stat()
    return _sha256(path, stat.st_size, stat.st_mtime_ns)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _commit(folder: Path) -> str:
    """The repository's head commit: a sha1 of its files' names, sizes and times, so every commit changes it."""
    listing = [f"{p.relative_to(folder)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in _files(folder)]
    return hashlib.sha1("\n".join([str(folder), *listing]).encode()).hexdigest()


def _entry(folder: Path, path: Path) -> dict:
    """A tree / paths-info entry in the Hub's shape."""
    name = path.relative_to(folder).as_posix()
    if path.is_dir():
        return {"type": "directory", "oid": hashlib.sha1(name.encode()).hexdigest(), "size": 0, "path": name}
    return {"type": "file", "oid": _digest(path)[:40], "size": path.stat().st_size, "path": name}


class _HubError(Exception):
    """An error answer as the Hub gives it: status, X-Error-Code (if any), message, and the commit (if known)."""

    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        headers = {"X-Error-Code": code, "X-Error-Message": message, "X-Repo-Commit": commit}
        self.headers = {name: value for name, value in headers.items() if value}


class _Handler(BaseHTTPRequestHandler):
    """Routes the Hub's download, API and upload requests to the repositories on disk."""

    hub: StandInHub

    def do_HEAD(self) -> None:
        self._answer()

    do_GET = do_POST = do_PUT = do_HEAD

    def log_message(self, *args) -> None:
        """Quiet: the clients say what they download."""

    def _answer(self) -> None:
        url = urlsplit(self.path)
        self.token = self.headers.get("Authorization", "").removeprefix("Bearer ") or None
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            if self.token is not None and self.token not in ROLES:
                raise _HubError(401, None, "Invalid credentials in Authorization header")
            status, data, headers = self._route([unquote(p) for p in url.path.strip("/").split("/")])
        except _HubError as error:
            status, data, headers = error.status, json.dumps({"error": error.message}).encode(), error.headers
        self.send_response(status)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(self, parts: list[str]) -> tuple[int, bytes, dict[str, str]]:
        match parts:
            case ["api", "whoami-v2"]:
                if self.token is None:
                    raise _HubError(401, None, "Invalid username or password.")
                access = {"displayName": "stand-in", "role": ROLES[self.token]}
                return _json(
                    {"type": "user", "name": USER, "auth": {"type": "access_token", "accessToken": access}}
                )
            case ["api", "validate-yaml"]:
                return _json({})
            case ["api", "repos", "create"]:
                return self._create(json.loads(self.body))
            case ["api", "models" | "datasets" as kind, org, name, *rest]:
                return self._api(kind, f"{org}/{name}", rest)
            case ["lfs-upload", oid] if self.command == "PUT":
                if hashlib.sha256(self.body).hexdigest() != oid:
                    raise _HubError(400, None, f"The uploaded content does not hash to {oid}")
                (self.hub.root / "lfs").mkdir(exist_ok=True)
                (self.hub.root / "lfs" / oid).write_bytes(self.body)
                return _json({})
        kind, parts = ("datasets", parts[1:]) if parts[0] == "datasets" else ("models", parts)
        match parts:
            case [org, name, "resolve", revision, *path]:
                return self._resolve(kind, f"{org}/{name}", revision, "/".join(path))
            case [org, name, "info", "lfs", "objects", "batch"]:
                return self._lfs_batch(kind, f"{org}/{name.removesuffix('.git')}", json.loads(self.body))
        raise _HubError(404, None, f"Sorry, we can't find the page you are looking for: {self.path}")

    def _repo(self, kind: str, repo_id: str, revision: str = "main") -> tuple[Path, str]:
        """The repository's folder and head commit; 404 RepoNotFound or RevisionNotFound as the Hub answers."""
        folder = self.hub.root / kind / repo_id
        if not folder.is_dir():
            raise _HubError(404, "RepoNotFound", "Repository not found")
        commit = _commit(folder)
        if revision not in ("main", commit):
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}", commit)
        return folder, commit

    def _gate(self, repo_id: str) -> None:
        """401/403 GatedRepo for a gated repository unless the token's account accepted the licence."""
        if repo_id in self.hub.gated and self.token not in (READ_TOKEN, WRITE_TOKEN):
            status = 401 if self.token is None else 403
            raise _HubError(status, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in the "
                           f"authorized list. Visit https://huggingface.co/{repo_id} to ask for access.")  # fmt: skip

    def _may_write(self, namespace: str) -> None:
        """401 without a token, 403 with a read token or another namespace; every refusal is recorded."""
        if self.token is None or ROLES[self.token] != "write" or namespace != USER:
            self.hub.refused.append(f"{self.command} {self.path}")
            if self.token is None:
                raise _HubError(401, None, "Invalid username or password.")
            raise _HubError(403, None, f"You don't have the rights to write to the namespace {namespace}")

    def _resolve(
        self, kind: str, repo_id: str, revision: str, name: str
    ) -> tuple[int, bytes, dict[str, str]]:
        folder, commit = self._repo(kind, repo_id, revision)
        self._gate(repo_id)
        path = folder / name
        if not path.is_file() or not path.resolve().is_relative_to(folder.resolve()):
            raise _HubError(404, "EntryNotFound", f"{name} does not exist on {revision}", commit)
        data, size = path.read_bytes(), path.stat().st_size
        headers = {"X-Repo-Commit": commit, "ETag": f'"{_digest(path)}"', "Accept-Ranges": "bytes"}
        headers["Content-Type"] = "application/octet-stream"
        if self.headers.get("Range", "").startswith("bytes="):
            start, _, end = self.headers["Range"].removeprefix("bytes=").partition("-")
            start, end = int(start), min(int(end or size - 1), size - 1)
            return 206, data[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
        return 200, data, headers

    def _api(self, kind: str, repo_id: str, rest: list[str]) -> tuple[int, bytes, dict[str, str]]:
        match rest:
            case [] | ["revision", _]:
                folder, commit = self._repo(kind, repo_id, rest[1] if rest else "main")
                siblings = [{"rfilename": e["path"], "size": e["size"], "blobId": e["oid"]}
                            for e in (_entry(folder, p) for p in _files(folder))]  # fmt: skip
                gated = "manual" if repo_id in self.hub.gated else False
                return _json({"_id": commit[:24], "id": repo_id, "author": repo_id.split("/")[0], "sha": commit,
                              "lastModified": DATE, "createdAt": DATE, "private": False, "gated": gated,
                              "disabled": False, "tags": [], "downloads": 0, "likes": 0, "siblings": siblings})  # fmt: skip
            case ["auth-check"]:
                self._repo(kind, repo_id)
                self._gate(repo_id)
                return _json({})
            case ["tree", revision, *path]:
                folder, _ = self._repo(kind, repo_id, revision)
                top = folder / "/".join(path)
                if not top.is_dir() or not top.resolve().is_relative_to(folder.resolve()):
                    raise _HubError(404, "EntryNotFound", f"{'/'.join(path)} does not exist on {revision}")
                recursive = (
                    parse_qs(urlsplit(self.path).query).get("recursive", ["false"])[0].lower() == "true"
                )
                return _json(
                    [_entry(folder, p) for p in sorted(top.rglob("*") if recursive else top.iterdir())]
                )
            case ["paths-info", revision]:
                folder, _ = self._repo(kind, repo_id, revision)
                paths = [folder / p for p in parse_qs(self.body.decode()).get("paths", [])]
                return _json([_entry(folder, p) for p in paths if p.exists()])
            case ["preupload", revision]:
                self._may_write(repo_id.split("/")[0])
                _, commit = self._repo(kind, repo_id, revision)
                files = json.loads(self.body)["files"]
                modes = [
                    {"path": f["path"], "uploadMode": _upload_mode(f), "shouldIgnore": False} for f in files
                ]
                return _json({"files": modes, "commitOid": commit})
            case ["xet-write-token" | "xet-read-token", *_]:
                raise _HubError(
                    501, None, "The stand-in Hub takes uploads by LFS, not Xet: set HF_HUB_DISABLE_XET=1"
                )
            case ["commit", revision]:
                self._may_write(repo_id.split("/")[0])
                folder, _ = self._repo(kind, repo_id, revision)
                return self._commit_files(kind, repo_id, folder)
        raise _HubError(404, None, f"Sorry, we can't find the page you are looking for: {self.path}")

    def _lfs_batch(self, kind: str, repo_id: str, request: dict) -> tuple[int, bytes, dict[str, str]]:
        """The git-lfs batch API, basic transfer: an upload URL for each object not stored yet."""
        self._may_write(repo_id.split("/")[0])
        self._repo(kind, repo_id)
        objects = [{"oid": o["oid"], "size": o["size"]} for o in request["objects"]]
        for o in objects:
            if not (self.hub.root / "lfs" / o["oid"]).is_file():
                o["actions"] = {"upload": {"href": f"{self.hub.endpoint}/lfs-upload/{o['oid']}"}}
        return _json({"transfer": "basic", "objects": objects})

    def _create(self, request: dict) -> tuple[int, bytes, dict[str, str]]:
        namespace = request.get("organization") or USER
        self._may_write(namespace)
        kind = f"{request.get('type') or 'model'}s"
        repo_id = f"{namespace}/{request['name']}"
        url = f"{self.hub.endpoint}/{'datasets/' if kind == 'datasets' else ''}{repo_id}"
        if (self.hub.root / kind / repo_id).exists():
            return 409, json.dumps({"error": "You already created this repo", "url": url}).encode(), {}
        (self.hub.root / kind / repo_id).mkdir(parents=True)
        return _json({"url": url, "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]})

    def _commit_files(self, kind: str, repo_id: str, folder: Path) -> tuple[int, bytes, dict[str, str]]:
        """Applies an NDJSON commit of regular (base64) files and deletions."""
        for item in map(json.loads, self.body.decode().splitlines()):
            key, value = item["key"], item["value"]
            target = folder / value.get("path", "")
            if key != "header" and not target.resolve().is_relative_to(folder.resolve()):
                raise _HubError(400, None, f"Invalid path: {value['path']}")
            if key == "file":
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(base64.b64decode(value["content"]))
            elif key == "deletedFile":
                target.unlink(missing_ok=True)
            elif key == "deletedFolder":
                shutil.rmtree(target, ignore_errors=True)
            elif key == "lfsFile":
                if not (self.hub.root / "lfs" / value["oid"]).is_file():
                    raise _HubError(400, None, f"LFS object {value['oid']} was never uploaded")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.hub.root / "lfs" / value["oid"], target)
        commit = _commit(folder)
        url = f"{self.hub.endpoint}/{'datasets/' if kind == 'datasets' else ''}{repo_id}/commit/{commit}"
        return _json({"success": True, "commitOid": commit, "commitUrl": url, "pullRequestUrl": None})


def _upload_mode(file: dict) -> str:
    """What the Hub answers in preupload: LFS for binary content (a NUL byte in the sample) or 10 MB and more."""
    return "lfs" if b"\0" in base64.b64decode(file["sample"]) or file["size"] >= 10_000_000 else "regular"


def _json(body: dict | list) -> tuple[int, bytes, dict[str, str]]:
    return 200, json.dumps(body).encode(), {}


class StandInHub:
    """The stand-in Hub serving `root`'s repositories on 127.0.0.1 during a `with` block (`endpoint` names it);
    `gated` repos need READ_TOKEN or WRITE_TOKEN; `refused` lists every write turned down."""

    def __init__(self, root: Path, gated: set[str] | frozenset[str] = frozenset()) -> None:
        self.root, self.gated, self.refused, self.endpoint = Path(root), set(gated), [], ""

    def __enter__(self) -> StandInHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"hub": self}))
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def env(self) -> dict[str, str]:
        """A client's environment for this Hub (read at import): its endpoint, online whatever the shell says, uploads
        by LFS rather than Xet, and no download count sent to datasets' S3 bucket."""
        online = {name: "0" for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
        return {
            "HF_ENDPOINT": self.endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_UPDATE_DOWNLOAD_COUNTS": "0",
            **online,
        }

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
