"""The scoring service's OpenAPI document, generated from the bundle's schema: what ``GET /openapi.json``
serves and what the schemathesis run fuzzes the service from."""

from __future__ import annotations

import math
from typing import Any

from intent_edge.runtime import Predictor
from intent_edge.runtime.encoder import MAX_STANDARD_SCORE, NumericFeature


def openapi_document(predictor: Predictor, max_batch: int, max_explain: int = 100) -> dict:
    """OpenAPI 3.0 for this bundle: a record has every feature of the schema, numbers within the range the
    encoder accepts, categories as text, integers or booleans (unseen ones are scored as unknown)."""
    properties: dict[str, dict] = {}
    for feature in predictor.encoder.features:
        if isinstance(feature, NumericFeature):
            spec: dict[str, Any] = {"type": "number"}
            low, high = (feature.center - MAX_STANDARD_SCORE * feature.scale,
                         feature.center + MAX_STANDARD_SCORE * feature.scale)
            if feature.transform == "identity":
                spec.update(minimum=low, maximum=high)
            elif high < 700:  # log1p(x) <= high; beyond e^700 every float64 is accepted anyway
                spec["maximum"] = math.expm1(high)
            properties[feature.name] = spec
        else:
            properties[feature.name] = {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}],
                                        "example": feature.vocabulary[0] if feature.vocabulary else "x"}
    record = {"type": "object", "required": list(predictor.encoder.names), "properties": properties,
              "additionalProperties": True}
    error = {"type": "object", "required": ["error", "kind"],
             "properties": {"error": {"type": "string"}, "kind": {"type": "string"},
                            "field": {"type": "string"}, "record": {"type": "integer", "nullable": True}}}
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    contributions = {"type": "object", "additionalProperties": {"type": "number"},
                     "description": "each field's Shapley value against the bundle's background; base plus their "
                                    "sum is the probability"}
    explanation = {"type": "object", "required": ["base", "contributions"],
                   "properties": {"base": {"type": "number"}, "contributions": contributions}}
    request_id = {"type": "string", "description": "the id to send the record's outcome with, to /v1/feedback"}
    single = {"type": "object", "required": ["probability", "decision", "variant", "request_id"],
              "properties": {"probability": probability, "decision": {"type": "boolean"},
                             "variant": {"type": "string"}, "request_id": request_id, **explanation["properties"]}}
    batch = {"type": "object", "required": ["probabilities", "decisions", "variant", "request_ids"],
             "properties": {"probabilities": {"type": "array", "items": probability},
                            "decisions": {"type": "array", "items": {"type": "boolean"}},
                            "variant": {"type": "string"}, "request_ids": {"type": "array", "items": request_id},
                            "explanations": {"type": "array", "items": explanation}}}
    nullable_number = {"type": "number", "nullable": True}
    feedback_answer = {"type": "object", "required": ["request_id", "outcome", "probability", "window"],
                       "properties": {"request_id": {"type": "string"}, "outcome": {"type": "boolean"},
                                      "probability": probability, "window": {
                                          "type": "object", "properties": {
                                              "outcomes": {"type": "integer"}, "buyers": {"type": "integer"},
                                              "roc_auc": nullable_number, "mean_probability": {"type": "number"},
                                              "buyer_rate": {"type": "number"}}}}}
    explain = {"type": "boolean", "default": False,
               "description": f"add each field's contribution (at most {max_explain} records a request)"}
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    errors = {str(code): {"description": text, "content": error_body}
              for code, text in ((400, "not JSON, or not a {record} / {records} object (with an optional "
                                       "explain flag), or explain asked of a bundle without a background"),
                                 (413, "body, batch or records to explain too many"),
                                 (422, "a record the runtime refuses; the error names the field and record"))}
    return {
        "openapi": "3.0.3",
        "info": {"title": "intent-edge scoring service", "version": "1",
                 "description": f"Purchase probability for raw session records, bundle variant "
                                f"{predictor.variant}, decision threshold {predictor.threshold:.6f}."},
        "paths": {
            "/v1/predict": {"post": {
                "summary": "Score one record or a batch",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"type": "object", "required": ["record"], "additionalProperties": False,
                     "properties": {"record": {"$ref": "#/components/schemas/Record"}, "explain": explain}},
                    {"type": "object", "required": ["records"], "additionalProperties": False,
                     "properties": {"records": {"type": "array", "maxItems": max_batch,
                                                "items": {"$ref": "#/components/schemas/Record"}},
                                    "explain": explain}},
                ]}}}},
                "responses": {"200": {"description": "probability and decision (one record) or lists of them",
                                      "content": {"application/json": {"schema": {"oneOf": [single, batch]}}}},
                              **errors}}},
            "/v1/feedback": {"post": {
                "summary": "Record the outcome of a scored record; the realised figures over the recent outcomes",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["request_id", "outcome"], "additionalProperties": False,
                    "properties": {"request_id": request_id, "outcome": {"type": "boolean"}}}}}},
                "responses": {"200": {"description": "recorded; ROC-AUC and calibration over the window",
                                      "content": {"application/json": {"schema": feedback_answer}}},
                              "400": {"description": "not JSON, or not {request_id, outcome}", "content": error_body},
                              "404": {"description": "an unknown, expired or answered request_id",
                                      "content": error_body},
                              "413": errors["413"]}}},
            "/v1/monitor": {"get": {"summary": "The monitoring sketch of everything scored since the bundle loaded",
                                    "responses": {"200": {"description": "variant, generation and sketch (JSON)",
                                                          "content": {"application/json": {
                                                              "schema": {"type": "object"}}}},
                                                  "404": {"description": "the bundle has no monitoring profile",
                                                          "content": error_body}}}},
            "/healthz": {"get": {"summary": "Liveness and the bundle being served", "responses": {"200": {
                "description": "serving", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "Prometheus text format",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": {"Record": record, "Error": error}},
    }
