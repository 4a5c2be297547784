"""``remote``: any WorldArena 2.0 Track 2 world-model service (API 1.0) as an adapter.

``--model remote --model-option url=http://HOST:PORT``; the bearer token, when the service wants
one, is read from the environment variable named by ``token_env`` (``EWMBENCH_REMOTE_TOKEN``) and
never recorded. The adapter reads the service's capabilities once, maps each trial onto one API
sample (:mod:`ewmbench.models.wire`, the mapping ``ewmbench serve`` shares), sends the context at the
profile's image size (the runner conforms the answer back to the benchmark's size), chunks a trial
longer than the profile's prediction range into stateless requests, groups trials into batches
within the service's batch size and request bytes, and keeps at most ``concurrency`` requests in
flight. A trial's frame 0 is the model's own, from the optional field our service adds (the
frame-0 rule of :mod:`ewmbench.models.invoke`); from a service without it, the context frame. Retryable failures (429, 5xx, dropped connections, timeouts) are retried with backoff under
the same request_id, which the API makes idempotent. An answer out of contract (wrong ids, order,
frame count, size or PNG) is an error naming the request_id and the sample.
"""

from __future__ import annotations

import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from ewmbench.data.layout import HEAD_VIEW
from ewmbench.errors import ConfigError, Unavailable, require
from ewmbench.httpclient import HTTPClient, HTTPSettings, RemoteError
from ewmbench.models.adapter import WorldModel
from ewmbench.models.capabilities import Capabilities
from ewmbench.models.chunking import generate_chunked
from ewmbench.models.invoke import FRAME_0_FIELD
from ewmbench.models.request import GenerationRequest, GenerationResult, fit_length
from ewmbench.models.wire import (
    API_VERSION,
    ApiError,
    Limits,
    Profile,
    decode_image,
    parse_capabilities,
    request_to_sample,
)
from ewmbench.registry import Option

DEFAULT_TOKEN_ENV = "EWMBENCH_REMOTE_TOKEN"


class RemoteModel(WorldModel):
    name = "remote"
    description = "A world model served over the WorldArena 2.0 Track 2 API (ewmbench serve, or anyone's); option url=http://HOST:PORT."
    capabilities = Capabilities(conditioning=frozenset({"image"}), views=(HEAD_VIEW,))
    options = (
        Option("url", str, None, "base URL of the service, http(s)://HOST:PORT"),
        Option(
            "token_env",
            str,
            DEFAULT_TOKEN_ENV,
            "environment variable holding the bearer token (unset: no token)",
        ),
        Option("profile", str, None, "profile_id to use (default: the service's first)"),
        Option(
            "timeout",
            float,
            None,
            "seconds per request (default: the service's recommended timeout)",
            0.1,
            86_400,
        ),
        Option("retries", int, 3, "further attempts on retryable errors", 0, 20),
        Option("backoff", float, 0.5, "seconds before the first retry, doubled each time", 0.0, 60.0),
        Option(
            "concurrency",
            int,
            None,
            "requests in flight at once (default: the service's max_concurrency)",
            1,
            64,
        ),
    )
    status = "tested on loopback against ewmbench serve (static, sim)"

    def __init__(self, **options):
        super().__init__(**options)
        if not self.settings["url"]:
            raise ConfigError(
                "model 'remote' needs the service's address: --model-option url=http://HOST:PORT"
            )
        self._manifest: tuple[str, Profile, Limits] | None = None
        self._client = None

    def config(self) -> dict:
        settings = dict(self.settings)
        if self._manifest is not None:
            settings["model_version"], settings["profile"] = self._manifest[0], self._manifest[1].profile_id
        return settings

    # -- the service's manifest
    def client(self):
        if self._client is None:
            token = os.environ.get(self.settings["token_env"] or DEFAULT_TOKEN_ENV)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            timeout = self.settings["timeout"] or 30.0
            concurrency = self.settings["concurrency"] or 4
            self._client = HTTPClient(
                self.settings["url"],
                HTTPSettings(timeout, self.settings["retries"], self.settings["backoff"], concurrency),
                headers,
            )
        return self._client

    def manifest(self) -> tuple[str, Profile, Limits]:
        if self._manifest is None:
            require("httpx", "serve", "the remote model")
            url = self.settings["url"]
            try:
                data = self.client().get_json("/v1/capabilities")
                version, profiles, limits, _ = parse_capabilities(data)
            except RemoteError as exc:
                raise Unavailable(
                    f"the world-model service at {url} cannot be reached or refused: {exc}",
                    "start it (ewmbench serve ...) or check the url and token",
                ) from None
            except ValueError as exc:
                raise ConfigError(
                    f"the service at {url} answered capabilities out of contract: {exc}"
                ) from None
            wanted = self.settings["profile"]
            chosen = next((p for p in profiles if wanted in (None, p.profile_id)), None)
            if chosen is None:
                raise ConfigError(
                    f"the service at {url} has no profile {wanted!r}; it has {[p.profile_id for p in profiles]}"
                )
            self._manifest = (version, chosen, limits)
            # Timeouts and concurrency follow the service unless the user set them.
            settings = self.client().settings
            if self.settings["timeout"] is None:
                settings.timeout = max(1.0, limits.recommended_timeout_ms / 1000)
                self._client._client.timeout = settings.timeout
            if self.settings["concurrency"] is None:
                settings.max_concurrency = min(limits.max_concurrency, 16)
        return self._manifest

    def capabilities_now(self) -> Capabilities:
        _, profile, limits = self.manifest()
        conditioning = {"image"}
        if profile.action_dim > 0:
            conditioning.add("actions")
        if profile.instruction_supported:
            conditioning.add("text")
        return Capabilities(
            conditioning=frozenset(conditioning),
            views=(HEAD_VIEW,),
            native_size=(profile.height, profile.width),
            memory_frames=1,
            action_space="eef14-euler" if profile.action_dim == 14 else None,
            max_batch=limits.max_batch_size * self.client().settings.max_concurrency,
        )

    def check_available(self) -> None:
        self.manifest()

    # -- generation
    def generate(self, request: GenerationRequest) -> GenerationResult:
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        _, profile, limits = self.manifest()
        results: list[GenerationResult | None] = [None] * len(requests)
        whole = [i for i, r in enumerate(requests) if r.num_frames - 1 <= profile.prediction_max]
        long = [i for i in range(len(requests)) if i not in whole]
        jobs = []
        for group in self._batches([requests[i] for i in whole], whole, profile, limits):
            jobs.append(("batch", group))
        jobs.extend(("chunked", [i]) for i in long)
        with ThreadPoolExecutor(max_workers=self.client().settings.max_concurrency) as pool:

            def run(job):
                kind, indices = job
                if kind == "batch":
                    return indices, self._predict([requests[i] for i in indices], profile)
                chunk = profile.prediction_max + 1
                return indices, [
                    generate_chunked(lambda r: self._predict([r], profile)[0], requests[indices[0]], chunk, 1)
                ]

            for indices, answers in pool.map(run, jobs):
                for i, answer in zip(indices, answers):
                    results[i] = answer
        return results  # type: ignore[return-value]

    def _batches(
        self, requests: list[GenerationRequest], indices: list[int], profile: Profile, limits: Limits
    ):
        """Groups of indices within the batch size and (estimated) request bytes."""
        group: list[int] = []
        size = 0
        for request, index in zip(requests, indices):
            # A frame's PNG is at most about its raw size; base64 adds a third.
            estimate = (
                int(request.memory_frames[HEAD_VIEW][-1].nbytes * 1.4)
                + 40 * request.num_frames * max(1, profile.action_dim)
                + 1024
            )
            if group and (
                len(group) >= limits.max_batch_size or size + estimate > limits.max_request_bytes * 0.9
            ):
                yield group
                group, size = [], 0
            group.append(index)
            size += estimate
        if group:
            yield group

    def _predict(self, requests: list[GenerationRequest], profile: Profile) -> list[GenerationResult]:
        version = self.manifest()[0]
        padded = []
        for request in requests:
            wanted = request.num_frames - 1
            if wanted < profile.prediction_min:  # ask for the minimum, holding the last action; cut after
                extended = replace(request, num_frames=profile.prediction_min + 1)
                if request.actions is not None:
                    extended.actions = fit_length(request.actions, request.start_frame + extended.num_frames)
                padded.append(extended)
            else:
                padded.append(request)
        samples = [request_to_sample(r, profile) for r in padded]
        request_id = str(uuid.uuid4())
        payload = {
            "api_version": API_VERSION,
            "request_id": request_id,
            "model_version": version,
            "profile_id": profile.profile_id,
            "samples": samples,
        }
        if len(json.dumps(payload)) > self.manifest()[2].max_request_bytes:
            raise ConfigError(
                f"request {request_id}: one sample is larger than the service's max_request_bytes"
            )
        try:
            answer = self.client().post_json("/v1/predict", payload)
        except RemoteError as exc:
            raise RemoteError(
                f"request {request_id} ({', '.join(s['sample_id'] for s in samples)}): {exc}",
                exc.status,
                exc.code,
            ) from None
        predictions = check_answer(
            answer,
            request_id,
            version,
            [s["sample_id"] for s in samples],
            [len(s["actions"]) for s in samples],
            profile,
        )
        results = []
        for request, sent, (first, frames) in zip(requests, samples, predictions):
            if first is None:  # a service that does not send the model's frame 0: the context stands in
                first = decode_image(
                    sent["context"]["frames"][-1], profile.height, profile.width, "context", 2**31
                )
            video = np.concatenate([first[None], frames])[: request.num_frames]
            results.append(
                GenerationResult(
                    {HEAD_VIEW: video},
                    info={
                        "remote": {
                            "model_version": version,
                            "profile_id": profile.profile_id,
                            "request_id": request_id,
                        }
                    },
                )
            )
        return results

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def check_answer(
    answer: dict, request_id: str, version: str, sample_ids: list[str], counts: list[int], profile: Profile
) -> list[tuple[np.ndarray | None, np.ndarray]]:
    """(the model's own frame 0 or None, the predicted frames) per sample of a predict answer; a
    RemoteError naming what is out of contract. Frame 0 comes from the optional field
    ``FRAME_0_FIELD`` that ``ewmbench serve`` adds (:mod:`ewmbench.models.invoke`)."""

    def wrong(problem: str):
        return RemoteError(f"the service answered request {request_id} out of contract: {problem}")

    if answer.get("api_version") != API_VERSION:
        raise wrong(f"api_version {answer.get('api_version')!r}, expected {API_VERSION!r}")
    if answer.get("request_id") != request_id:
        raise wrong(f"request_id {str(answer.get('request_id'))[:80]!r} is not the one sent")
    if answer.get("model_version") != version:
        raise wrong(f"model_version {str(answer.get('model_version'))[:80]!r}, the manifest says {version!r}")
    predictions = answer.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != len(sample_ids):
        raise wrong(
            f"{len(predictions) if isinstance(predictions, list) else 'no'} predictions for {len(sample_ids)} samples"
        )
    got = [p.get("sample_id") if isinstance(p, dict) else None for p in predictions]
    if got != sample_ids:
        raise wrong(f"sample ids {got} are not the samples sent, in order ({sample_ids})")
    out = []
    for prediction, sample_id, count in zip(predictions, sample_ids, counts):
        frames = prediction.get("frames")
        if not isinstance(frames, list) or len(frames) != count:
            raise wrong(
                f"sample {sample_id!r}: {len(frames) if isinstance(frames, list) else 'no'} frames for {count} actions"
            )
        try:
            predicted = np.stack(
                [
                    decode_image(f, profile.height, profile.width, f"sample {sample_id!r} frame {i}", 2**31)
                    for i, f in enumerate(frames)
                ]
            )
            first = prediction.get(FRAME_0_FIELD)
            if first is not None:
                first = decode_image(
                    first, profile.height, profile.width, f"sample {sample_id!r} {FRAME_0_FIELD}", 2**31
                )
        except ApiError as exc:
            raise wrong(exc.message) from None
        out.append((first, predicted))
    return out
