"""An independent implementation of Loki's push payload: Google's protobuf runtime over Loki's schema
(pkg/push/push.proto: PushRequest, StreamAdapter, EntryAdapter, LabelPairAdapter) and cramjam's raw
snappy. `decode` reads a body on stdin and prints its streams as JSON; `encode` does the reverse."""
import json
import sys

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

F = descriptor_pb2.FieldDescriptorProto


def schema():
    file = descriptor_pb2.FileDescriptorProto(name="push.proto", package="logproto", syntax="proto3")
    file.dependency.append("google/protobuf/timestamp.proto")

    def message(name, fields):
        m = file.message_type.add(name=name)
        for number, (field, kind, label, type_name) in enumerate(fields, start=1):
            f = m.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                f.type_name = type_name

    one, many = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("PushRequest", [("streams", F.TYPE_MESSAGE, many, ".logproto.StreamAdapter")])
    message("StreamAdapter", [
        ("labels", F.TYPE_STRING, one, None),
        ("entries", F.TYPE_MESSAGE, many, ".logproto.EntryAdapter"),
        ("hash", F.TYPE_UINT64, one, None),
    ])
    message("EntryAdapter", [
        ("timestamp", F.TYPE_MESSAGE, one, ".google.protobuf.Timestamp"),
        ("line", F.TYPE_STRING, one, None),
        ("structuredMetadata", F.TYPE_MESSAGE, many, ".logproto.LabelPairAdapter"),
    ])
    message("LabelPairAdapter", [("name", F.TYPE_STRING, one, None), ("value", F.TYPE_STRING, one, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


PushRequest = schema()


def decode(body):
    request = PushRequest()
    request.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    return {"streams": [
        {"labels": s.labels, "entries": [
            {"ts": e.timestamp.seconds * 1_000_000_000 + e.timestamp.nanos, "line": e.line,
             "metadata": [[p.name, p.value] for p in e.structuredMetadata]}
            for e in s.entries]}
        for s in request.streams]}


def encode(doc):
    request = PushRequest()
    for s in doc["streams"]:
        stream = request.streams.add(labels=s["labels"])
        for e in s["entries"]:
            entry = stream.entries.add(line=e["line"])
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(e["ts"], 1_000_000_000)
            for name, value in e["metadata"]:
                entry.structuredMetadata.add(name=name, value=value)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


if __name__ == "__main__":
    if sys.argv[1] == "decode":
        json.dump(decode(sys.stdin.buffer.read()), sys.stdout, ensure_ascii=False)
    else:
        sys.stdout.buffer.write(encode(json.load(sys.stdin)))
