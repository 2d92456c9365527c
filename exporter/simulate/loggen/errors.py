"""Error texts and stack frames of failed transfers (reference §3), with their weights."""

from __future__ import annotations

_SERVER_FRAMES = (
    "storj.io/common/pb.DRPCPiecestoreDescription.Method.func{n}:{line}",
    "storj.io/drpc/drpcmux.(*Mux).HandleRPC:33",
    "storj.io/common/rpc/rpctracing.(*Handler).HandleRPC:61",
    "storj.io/common/experiment.(*Handler).HandleRPC:42",
    "storj.io/drpc/drpcserver.(*Server).handleRPC:167",
    "storj.io/drpc/drpcserver.(*Server).ServeOne:109",
    "storj.io/drpc/drpcserver.(*Server).Serve.func2:157",
    "storj.io/drpc/drpcctx.(*Tracker).track:35",
)
_WRITE_FRAMES = (
    "storj.io/drpc/drpcstream.(*Stream).rawWriteLocked:409",
    "storj.io/drpc/drpcstream.(*Stream).MsgSend:458",
    "storj.io/common/pb.(*drpcPiecestore_DownloadStream).Send:349",
    "storj.io/storj/storagenode/piecestore.(*Endpoint).Download.func6.1:757",
    "storj.io/common/rpc/rpctimeout.Run.func1:22",
)
_DOWNLOAD_FRAMES = (
    "storj.io/common/rpc/rpcstatus.Wrap:75",
    "storj.io/storj/storagenode/piecestore.(*Endpoint).Download:650",
    *_SERVER_FRAMES,
)
_UPLOAD_FRAMES = (
    "storj.io/common/rpc/rpcstatus.Wrap:75",
    "storj.io/storj/storagenode/piecestore.(*Endpoint).Upload:544",
    *_SERVER_FRAMES,
)
_SEND_FRAMES = (
    "storj.io/drpc/drpcstream.(*Stream).rawFlushLocked:401",
    "storj.io/drpc/drpcstream.(*Stream).MsgSend:458",
    "storj.io/common/pb.(*drpcPiecestore_UploadStream).SendAndClose:290",
    "storj.io/storj/storagenode/piecestore.(*Endpoint).Upload.func7:768",
    "storj.io/common/rpc/rpctimeout.Run.func1:22",
)
_READ_FRAMES = (
    "storj.io/drpc/drpcwire.(*Reader).ReadPacketUsing:96",
    "storj.io/drpc/drpcmanager.(*Manager).manageReader:229",
)

# (weight, error text, errorVerbose frames, kind, era filter)
# kind: "eof" (quiet DEBUG since v1.99), "disconnect" (WARN since v1.147), "other".
# era filter: None = every era, "old" = logged only up to v1.121, "hashstore" = v1.146 only.
_Err = tuple[int, str, tuple[str, ...], str, str | None]
_GET_ERRORS: tuple[_Err, ...] = (
    (30, "write tcp {local}->{remote}: write: connection timed out", _WRITE_FRAMES, "other",
     None),
    (18, "write tcp {local}->{remote}: write: broken pipe", _WRITE_FRAMES, "other", None),
    (14, "write tcp {local}->{remote}: write: connection reset by peer", _WRITE_FRAMES,
     "other", None),
    (12, "context deadline exceeded", _DOWNLOAD_FRAMES, "other", None),
    (6, "manager closed: read tcp {local}->{remote}: read: connection reset by peer",
     _READ_FRAMES, "other", None),
    (5, "file does not exist", _DOWNLOAD_FRAMES, "other", None),
    (3, "hashstore: file does not exist", _DOWNLOAD_FRAMES, "other", "hashstore"),
    (6, "used serial already exists in store", _DOWNLOAD_FRAMES, "other", "old"),
    (4, "untrusted: unable to get signee: trust: rpc: tcp connector failed: rpc: "
        "context deadline exceeded", _DOWNLOAD_FRAMES, "other", "old"),
)
_AUDIT_ERRORS: tuple[_Err, ...] = (
    (80, "file does not exist", _DOWNLOAD_FRAMES, "other", None),
    (40, "hashstore: file does not exist", _DOWNLOAD_FRAMES, "other", "hashstore"),
    (15, "write tcp {local}->{remote}: write: connection timed out", _WRITE_FRAMES, "other",
     None),
)
_REPAIR_ERRORS: tuple[_Err, ...] = (
    (45, "write tcp {local}->{remote}: write: connection timed out", _WRITE_FRAMES, "other",
     None),
    (30, "context deadline exceeded", _DOWNLOAD_FRAMES, "other", None),
    (15, "write tcp {local}->{remote}: write: broken pipe", _WRITE_FRAMES, "other", None),
    (10, "file does not exist", _DOWNLOAD_FRAMES, "other", None),
)
_UPLOAD_ERRORS: tuple[_Err, ...] = (
    (30, "unexpected EOF", _UPLOAD_FRAMES, "eof", None),
    (10, "manager closed: unexpected EOF", ("storj.io/drpc/drpcmanager.(*Manager)."
                                             "manageReader:231",), "eof", None),
    (20, "read tcp {local}->{remote}: read: connection reset by peer", _READ_FRAMES,
     "disconnect", None),
    (10, "write tcp {local}->{remote}: write: broken pipe", _SEND_FRAMES, "disconnect", None),
    (14, "context deadline exceeded", _UPLOAD_FRAMES, "other", None),
    (3, "pieces error: filestore error: write config/storage/temp/blob-{n}.partial: "
        "no space left on device", _UPLOAD_FRAMES, "other", None),
)
_CANCEL_REASONS = (
    (45, "context canceled"),
    (30, "stream closed by peer"),
    (20, "downloaded size ({sent} bytes) does not match received message size ({size} bytes)"),
    (5, "unknown reason bug in code, please report"),
)

