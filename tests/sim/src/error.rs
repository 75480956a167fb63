/// Why a tree operation was refused; each maps to what the real server would
/// have answered to the equivalent WebDAV request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    Exists(String),
    #[error("parent folder missing: {0}")]
    ParentMissing(String),
    #[error("not a folder: {0}")]
    NotAFolder(String),
    #[error("is a folder: {0}")]
    IsAFolder(String),
    #[error("invalid name: {0:?}")]
    InvalidName(String),
    #[error("invalid move: {0}")]
    InvalidMove(String),
    #[error("fileid {0} is not a top-level trash item")]
    NotInTrash(u64),
    #[error("the root folder cannot be moved or deleted")]
    Root,
    #[error("no such user: {0}")]
    UnknownUser(String),
    #[error("no such share: {0}")]
    UnknownShare(u64),
    #[error("invalid share: {0}")]
    InvalidShare(String),
    #[error("the share does not allow this: {0}")]
    PermissionDenied(String),
}
