//! Publish-subscribe nodes and items (XEP-0060): [`PubsubService`], [`StoredNode`],
//! [`StoredItem`], the [`PubsubStore`] trait, its statements, and its one implementation for
//! both backends.
//!
//! A service is named by its JID: an account's bare JID for XEP-0163 personal eventing (its
//! nodes then belong to the account and go with it), a domain of its own for a service that
//! belongs to no account. Nothing here knows what a node's configuration means: the server
//! keeps it as its own serialization and decides, inside the write, what a publish may do
//! ([`PublishPlan`]).

use crate::common::{count_from_db, unix_now, Sql};
use crate::{AccountId, PostgresStore, SqliteStore, StoreError};

/// The service a node is kept under.
#[derive(Clone, Copy, Debug)]
pub struct PubsubService<'a> {
    /// The service's JID.
    pub name: &'a str,
    /// The account whose personal eventing service this is: nodes are made only while it
    /// exists, and are removed with it. `None` for a service of its own.
    pub owner: Option<&'a AccountId>,
}

/// A node and its configuration (the server's serialization, opaque here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredNode {
    pub node: String,
    pub config: String,
}

/// One item as the server serialized its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredItem {
    pub id: String,
    /// The bare JID that published it.
    pub publisher: String,
    pub payload: String,
    /// Unix seconds.
    pub published_at: i64,
}

/// A node's configuration with the items a read asked for, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeItems {
    pub config: String,
    pub items: Vec<StoredItem>,
}

/// Which items of a node a read wants.
#[derive(Clone, Copy, Debug)]
pub enum ItemsWanted<'a> {
    /// The newest `n` (all of them with `u64::MAX`).
    Newest(u64),
    /// These ids, those of them that exist, in the order asked.
    Ids(&'a [String]),
}

/// What the server decides about a publish, having seen the node's stored configuration
/// (`None`: the node does not exist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishPlan {
    /// Write nothing (the caller keeps why).
    Refuse,
    /// Publish the item.
    Publish {
        /// The configuration to create the node with if it does not exist (XEP-0163 §3:
        /// auto-create), at most `max_nodes` per service; `None`: it must exist.
        create: Option<String>,
        max_nodes: u64,
        /// Keep the item, and the node's `n` newest items with it; `None`: the node keeps
        /// no items (`pubsub#persist_items` off), the item is only announced.
        keep: Option<u64>,
        /// The most items the whole service may keep: a publish that would leave more is
        /// refused (`u64::MAX`: no limit, nothing counted).
        max_service_items: u64,
    },
}

/// What a publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// The plan refused; nothing was written.
    Refused,
    /// The node does not exist and the plan did not create it.
    NoSuchNode,
    /// Creating the node would pass the service's `max_nodes`; nothing was written.
    TooManyNodes,
    /// Keeping the item would pass the service's `max_service_items`; nothing was written.
    TooManyItems,
    /// Published; `created` when the node was made for it.
    Done { created: bool },
}

/// What creating a node did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    Done,
    /// A node of that name exists already; nothing was written.
    Exists,
    TooManyNodes,
}

/// One explicit subscription to a node (XEP-0060 §6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The JID notifications go to: bare or full, as subscribed.
    pub jid: String,
    /// The subscription's id.
    pub subid: String,
    /// Its options, as the server serialized them (opaque here).
    pub options: String,
    /// Waiting for an owner's approval (§4.5 `authorize`, §6.1.2); not yet subscribed.
    pub pending: bool,
}

/// Which subscriptions of a node a removal takes.
#[derive(Clone, Copy, Debug)]
pub enum Subscribers<'a> {
    /// The subscription of exactly this JID.
    Jid(&'a str),
    /// Those of this bare JID and of all its full JIDs.
    Bare(&'a str),
}

/// The read-modify-write callback of a publish: sees the stored configuration and decides.
pub type PublishCheck<'a> = dyn FnMut(Option<&str>) -> PublishPlan + Send + 'a;

/// The callback of an affiliation change: sees the node's affiliations as they would be
/// and says whether to keep them.
pub type AffiliationCheck<'a> = dyn FnMut(&[(String, String)]) -> bool + Send + 'a;

/// Nodes and items of publish-subscribe services.
///
/// Writes to a personal eventing service whose account does not exist are NotFound; reads
/// of it find nothing.
#[async_trait::async_trait]
pub trait PubsubStore: Send + Sync {
    /// The node's configuration, if the node exists.
    async fn pubsub_node(&self, service: &str, node: &str) -> Result<Option<String>, StoreError>;

    /// Every node of the service, sorted by name (byte order).
    async fn pubsub_nodes(&self, service: &str) -> Result<Vec<StoredNode>, StoreError>;

    /// Makes a node, unless one of that name exists or the service holds `max_nodes`;
    /// `creator` (a bare JID), if given, becomes its owner in the same write.
    async fn create_pubsub_node(
        &self,
        service: &PubsubService<'_>,
        node: &str,
        config: &str,
        max_nodes: u64,
        creator: Option<&str>,
    ) -> Result<Created, StoreError>;

    /// Replaces the node's configuration and drops all but its `keep` newest items; false
    /// if there is no such node.
    async fn configure_pubsub_node(
        &self,
        service: &str,
        node: &str,
        config: &str,
        keep: u64,
    ) -> Result<bool, StoreError>;

    /// Removes the node and its items; false if there was no such node.
    async fn delete_pubsub_node(&self, service: &str, node: &str) -> Result<bool, StoreError>;

    /// Removes every item of the node; false if there is no such node.
    async fn purge_pubsub_node(&self, service: &str, node: &str) -> Result<bool, StoreError>;

    /// Publishes `item` into the node as `check` decides, in one transaction that holds
    /// the node (and, for an account's service, the account) from the read to the commit,
    /// so two publishes, here or in another process on the same database, never create a
    /// node twice or pass the node limit. `check` runs exactly once and must not wait.
    async fn publish_pubsub_item(
        &self,
        service: &PubsubService<'_>,
        node: &str,
        item: &StoredItem,
        check: &mut PublishCheck<'_>,
    ) -> Result<Published, StoreError>;

    /// Removes the items of these ids; `None` if there is no such node, else the ids that
    /// were there.
    async fn retract_pubsub_items(
        &self,
        service: &str,
        node: &str,
        ids: &[String],
    ) -> Result<Option<Vec<String>>, StoreError>;

    /// Removes the node's items published before `published_before` (Unix seconds): what
    /// an expiry of items lets go. `None` if there is no such node, else how many went.
    async fn expire_pubsub_items(
        &self,
        service: &str,
        node: &str,
        published_before: i64,
    ) -> Result<Option<u64>, StoreError>;

    /// The node's configuration and the items `wanted`, oldest first (ids: in the order
    /// asked); `None` if there is no such node.
    async fn pubsub_items(
        &self,
        service: &str,
        node: &str,
        wanted: ItemsWanted<'_>,
    ) -> Result<Option<NodeItems>, StoreError>;

    /// The node's affiliations as (bare JID, affiliation), sorted by JID; `None` if there
    /// is no such node.
    async fn pubsub_affiliations(
        &self,
        service: &str,
        node: &str,
    ) -> Result<Option<Vec<(String, String)>>, StoreError>;

    /// The affiliations of `jid` (a bare JID) across the service, as (node, affiliation),
    /// sorted by node.
    async fn pubsub_affiliations_of(
        &self,
        service: &str,
        jid: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Sets affiliations of the node, in order, in one write: `(jid, Some(affiliation))`
    /// sets one, `(jid, None)` removes it. `check` sees the node's affiliations as they
    /// would be afterwards (sorted by JID) and may refuse them, writing nothing; a JID
    /// whose new affiliation is one of `unsubscribing` also loses its subscriptions (its
    /// full JIDs' too). `None` if there is no such node, else whether it was written.
    async fn set_pubsub_affiliations(
        &self,
        service: &str,
        node: &str,
        changes: &[(String, Option<String>)],
        unsubscribing: &[&str],
        check: &mut AffiliationCheck<'_>,
    ) -> Result<Option<bool>, StoreError>;

    /// The node's subscriptions, sorted by JID; `None` if there is no such node.
    async fn pubsub_subscriptions(
        &self,
        service: &str,
        node: &str,
    ) -> Result<Option<Vec<StoredSubscription>>, StoreError>;

    /// The subscriptions of `bare` and its full JIDs across the service, as (node,
    /// subscription), sorted by node and JID.
    async fn pubsub_subscriptions_of(
        &self,
        service: &str,
        bare: &str,
    ) -> Result<Vec<(String, StoredSubscription)>, StoreError>;

    /// Adds a subscription (`bare`: its JID's bare JID), or replaces the one of the same
    /// JID; false if there is no such node.
    async fn put_pubsub_subscription(
        &self,
        service: &str,
        node: &str,
        bare: &str,
        subscription: &StoredSubscription,
    ) -> Result<bool, StoreError>;

    /// Removes the subscriptions `which`; `None` if there is no such node, else the JIDs
    /// whose subscriptions went.
    async fn remove_pubsub_subscriptions(
        &self,
        service: &str,
        node: &str,
        which: Subscribers<'_>,
    ) -> Result<Option<Vec<String>>, StoreError>;

    /// Every node of the service with its newest item, if it has one, sorted by node.
    async fn pubsub_last_items(
        &self,
        service: &str,
    ) -> Result<Vec<(StoredNode, Option<StoredItem>)>, StoreError>;

    /// The newest item of every node of the personal eventing services whose accounts
    /// share their presence with `contact` (roster subscription `from` or `both`), with the
    /// service and the node: what a contact's new resource is owed (XEP-0163 §6.1) in one
    /// read instead of one per account. Sorted by service, then node.
    async fn pep_last_items_shared_with(
        &self,
        contact: &str,
    ) -> Result<Vec<(String, StoredNode, StoredItem)>, StoreError>;
}

static NODE: Sql = Sql::new("SELECT config FROM pubsub_nodes WHERE service = ? AND node = ?");

/// The node a write works on, held for the rest of the transaction on PostgreSQL (a SQLite
/// write transaction holds the database's one write lock already).
static NODE_FOR_WRITE: Sql = Sql::with_postgres_tail(
    "SELECT id, config FROM pubsub_nodes WHERE service = ? AND node = ?",
    " FOR UPDATE",
);

static NODE_WITH_ID: Sql =
    Sql::new("SELECT id, config FROM pubsub_nodes WHERE service = ? AND node = ?");

static NODES: Sql =
    Sql::new("SELECT node, config FROM pubsub_nodes WHERE service = ? ORDER BY node");

static NODE_COUNT: Sql = Sql::new("SELECT COUNT(*) FROM pubsub_nodes WHERE service = ?");

static ITEM_COUNT: Sql = Sql::new(
    "SELECT COUNT(*) FROM pubsub_items i JOIN pubsub_nodes n ON n.id = i.node_id \
     WHERE n.service = ?",
);

static INSERT_NODE: Sql = Sql::new(
    "INSERT INTO pubsub_nodes (service, node, account_id, config, created_at) \
     VALUES (?, ?, ?, ?, ?) RETURNING id",
);

static SET_CONFIG: Sql = Sql::new("UPDATE pubsub_nodes SET config = ? WHERE id = ?");

static DELETE_NODE: Sql = Sql::new("DELETE FROM pubsub_nodes WHERE service = ? AND node = ?");

static PURGE: Sql = Sql::new("DELETE FROM pubsub_items WHERE node_id = ?");

static NEXT_SEQ: Sql =
    Sql::new("UPDATE pubsub_nodes SET item_seq = item_seq + 1 WHERE id = ? RETURNING item_seq");

static PUT_ITEM: Sql = Sql::new(
    "INSERT INTO pubsub_items (node_id, item_id, publisher, payload, published_at, seq) \
     VALUES (?, ?, ?, ?, ?, ?) \
     ON CONFLICT (node_id, item_id) DO UPDATE SET publisher = excluded.publisher, \
     payload = excluded.payload, published_at = excluded.published_at, seq = excluded.seq",
);

/// Drops every item older than the node's `n`-th newest (the OFFSET): with fewer items the
/// subquery finds nothing and nothing goes.
static TRIM: Sql = Sql::new(
    "DELETE FROM pubsub_items WHERE node_id = ? AND seq <= \
     (SELECT seq FROM pubsub_items WHERE node_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
);

static RETRACT: Sql = Sql::new("DELETE FROM pubsub_items WHERE node_id = ? AND item_id = ?");

static EXPIRE: Sql = Sql::new("DELETE FROM pubsub_items WHERE node_id = ? AND published_at < ?");

static NEWEST: Sql = Sql::new(
    "SELECT item_id, publisher, payload, published_at FROM pubsub_items \
     WHERE node_id = ? ORDER BY seq DESC LIMIT ?",
);

static ITEM: Sql = Sql::new(
    "SELECT item_id, publisher, payload, published_at FROM pubsub_items \
     WHERE node_id = ? AND item_id = ?",
);

static LAST_ITEMS: Sql = Sql::new(
    "SELECT n.node, n.config, i.item_id, i.publisher, i.payload, i.published_at \
     FROM pubsub_nodes n LEFT JOIN pubsub_items i ON i.node_id = n.id AND i.seq = \
     (SELECT MAX(s.seq) FROM pubsub_items s WHERE s.node_id = n.id) \
     WHERE n.service = ? ORDER BY n.node",
);

static SHARED_LAST_ITEMS: Sql = Sql::new(
    "SELECT n.service, n.node, n.config, i.item_id, i.publisher, i.payload, i.published_at \
     FROM roster_entries e \
     JOIN pubsub_nodes n ON n.account_id = e.account_id \
     JOIN pubsub_items i ON i.node_id = n.id AND i.seq = \
     (SELECT MAX(s.seq) FROM pubsub_items s WHERE s.node_id = n.id) \
     WHERE e.contact = ? AND e.subscription IN ('from', 'both') \
     ORDER BY n.service, n.node",
);

static AFFILIATIONS: Sql =
    Sql::new("SELECT jid, affiliation FROM pubsub_affiliations WHERE node_id = ? ORDER BY jid");

static AFFILIATIONS_OF: Sql = Sql::new(
    "SELECT n.node, a.affiliation FROM pubsub_affiliations a \
     JOIN pubsub_nodes n ON n.id = a.node_id WHERE n.service = ? AND a.jid = ? ORDER BY n.node",
);

static PUT_AFFILIATION: Sql = Sql::new(
    "INSERT INTO pubsub_affiliations (node_id, jid, affiliation) VALUES (?, ?, ?) \
     ON CONFLICT (node_id, jid) DO UPDATE SET affiliation = excluded.affiliation",
);

static REMOVE_AFFILIATION: Sql =
    Sql::new("DELETE FROM pubsub_affiliations WHERE node_id = ? AND jid = ?");

static SUBSCRIPTIONS: Sql = Sql::new(
    "SELECT jid, subid, options, pending FROM pubsub_subscriptions WHERE node_id = ? ORDER BY jid",
);

static SUBSCRIPTIONS_OF: Sql = Sql::new(
    "SELECT n.node, s.jid, s.subid, s.options, s.pending FROM pubsub_subscriptions s \
     JOIN pubsub_nodes n ON n.id = s.node_id WHERE n.service = ? AND s.bare = ? \
     ORDER BY n.node, s.jid",
);

static PUT_SUBSCRIPTION: Sql = Sql::new(
    "INSERT INTO pubsub_subscriptions (node_id, jid, bare, subid, options, pending, created_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (node_id, jid) DO UPDATE SET subid = excluded.subid, \
     options = excluded.options, pending = excluded.pending",
);

static REMOVE_SUBSCRIPTION: Sql =
    Sql::new("DELETE FROM pubsub_subscriptions WHERE node_id = ? AND jid = ? RETURNING jid");

static REMOVE_SUBSCRIPTIONS_OF: Sql =
    Sql::new("DELETE FROM pubsub_subscriptions WHERE node_id = ? AND bare = ? RETURNING jid");

/// An item's columns as the item reads give them: id, publisher, payload, published_at.
type ItemRow = (String, String, String, i64);

fn item_from_row((id, publisher, payload, published_at): ItemRow) -> StoredItem {
    StoredItem {
        id,
        publisher,
        payload,
        published_at,
    }
}

/// A subscription's columns: jid, subid, options, pending.
type SubscriptionRow = (String, String, String, bool);

fn subscription_from_row((jid, subid, options, pending): SubscriptionRow) -> StoredSubscription {
    StoredSubscription {
        jid,
        subid,
        options,
        pending,
    }
}

/// A node and its newest item, where the item's columns may be absent (LEFT JOIN).
type LastItemRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn last_item_from_row(
    (node, config, id, publisher, payload, published_at): LastItemRow,
) -> (StoredNode, Option<StoredItem>) {
    let item = match (id, publisher, payload, published_at) {
        (Some(id), Some(publisher), Some(payload), Some(published_at)) => Some(StoredItem {
            id,
            publisher,
            payload,
            published_at,
        }),
        _ => None,
    };
    (StoredNode { node, config }, item)
}

/// A count or limit as the databases bind it (both store signed 64-bit integers).
fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// [`PubsubStore`] for a backend: `$db` is its sqlx database, `$dialect` names the
/// statements' text (`sqlite` or `postgres`); the store provides `reader()`, `begin_write()`
/// and `begin_account_write()`.
macro_rules! pubsub_store {
    ($store:ty, $db:ty, $dialect:ident) => {
        impl $store {
            /// A write transaction for `service`: for an account's service one that holds
            /// the account (NotFound without it), with the account's id.
            async fn begin_service_write(
                &self,
                service: &PubsubService<'_>,
            ) -> Result<(sqlx::Transaction<'static, $db>, Option<i64>), StoreError> {
                match service.owner {
                    Some(owner) => {
                        let (tx, id) = self.begin_account_write(owner).await?;
                        Ok((tx, Some(id)))
                    }
                    None => Ok((self.begin_write().await?, None)),
                }
            }

            /// The node a write works on (its id and configuration), held until the end of
            /// `tx`.
            async fn node_for_write(
                tx: &mut sqlx::Transaction<'static, $db>,
                service: &str,
                node: &str,
            ) -> Result<Option<(i64, String)>, StoreError> {
                Ok(sqlx::query_as(NODE_FOR_WRITE.$dialect())
                    .bind(service)
                    .bind(node)
                    .fetch_optional(&mut **tx)
                    .await?)
            }

            /// Whether `service` may have one more node.
            async fn room_for_a_node(
                tx: &mut sqlx::Transaction<'static, $db>,
                service: &str,
                max_nodes: u64,
            ) -> Result<bool, StoreError> {
                let count: i64 = sqlx::query_scalar(NODE_COUNT.$dialect())
                    .bind(service)
                    .fetch_one(&mut **tx)
                    .await?;
                Ok(count_from_db(count) < max_nodes)
            }

            async fn insert_node(
                tx: &mut sqlx::Transaction<'static, $db>,
                service: &str,
                account: Option<i64>,
                node: &str,
                config: &str,
            ) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(INSERT_NODE.$dialect())
                    .bind(service)
                    .bind(node)
                    .bind(account)
                    .bind(config)
                    .bind(unix_now())
                    .fetch_one(&mut **tx)
                    .await?)
            }

            /// Drops all but the node's `keep` newest items.
            async fn trim(
                tx: &mut sqlx::Transaction<'static, $db>,
                node_id: i64,
                keep: u64,
            ) -> Result<(), StoreError> {
                sqlx::query(TRIM.$dialect())
                    .bind(node_id)
                    .bind(node_id)
                    .bind(to_db(keep))
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl PubsubStore for $store {
            async fn pubsub_node(
                &self,
                service: &str,
                node: &str,
            ) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar(NODE.$dialect())
                    .bind(service)
                    .bind(node)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?)
            }

            async fn pubsub_nodes(&self, service: &str) -> Result<Vec<StoredNode>, StoreError> {
                let rows: Vec<(String, String)> = sqlx::query_as(NODES.$dialect())
                    .bind(service)
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(node, config)| StoredNode { node, config })
                    .collect())
            }

            async fn create_pubsub_node(
                &self,
                service: &PubsubService<'_>,
                node: &str,
                config: &str,
                max_nodes: u64,
                creator: Option<&str>,
            ) -> Result<Created, StoreError> {
                let (mut tx, account) = self.begin_service_write(service).await?;
                if Self::node_for_write(&mut tx, service.name, node)
                    .await?
                    .is_some()
                {
                    return Ok(Created::Exists);
                }
                if !Self::room_for_a_node(&mut tx, service.name, max_nodes).await? {
                    return Ok(Created::TooManyNodes);
                }
                let node_id =
                    Self::insert_node(&mut tx, service.name, account, node, config).await?;
                if let Some(creator) = creator {
                    sqlx::query(PUT_AFFILIATION.$dialect())
                        .bind(node_id)
                        .bind(creator)
                        .bind("owner")
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(Created::Done)
            }

            async fn configure_pubsub_node(
                &self,
                service: &str,
                node: &str,
                config: &str,
                keep: u64,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some((node_id, _)) = Self::node_for_write(&mut tx, service, node).await? else {
                    return Ok(false);
                };
                sqlx::query(SET_CONFIG.$dialect())
                    .bind(config)
                    .bind(node_id)
                    .execute(&mut *tx)
                    .await?;
                Self::trim(&mut tx, node_id, keep).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_pubsub_node(
                &self,
                service: &str,
                node: &str,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                // The items go with it (ON DELETE CASCADE).
                let done = sqlx::query(DELETE_NODE.$dialect())
                    .bind(service)
                    .bind(node)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn purge_pubsub_node(
                &self,
                service: &str,
                node: &str,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some((node_id, _)) = Self::node_for_write(&mut tx, service, node).await? else {
                    return Ok(false);
                };
                sqlx::query(PURGE.$dialect())
                    .bind(node_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn publish_pubsub_item(
                &self,
                service: &PubsubService<'_>,
                node: &str,
                item: &StoredItem,
                check: &mut PublishCheck<'_>,
            ) -> Result<Published, StoreError> {
                let (mut tx, account) = self.begin_service_write(service).await?;
                let stored = Self::node_for_write(&mut tx, service.name, node).await?;
                let plan = check(stored.as_ref().map(|(_, config)| config.as_str()));
                let PublishPlan::Publish {
                    create,
                    max_nodes,
                    keep,
                    max_service_items,
                } = plan
                else {
                    // Dropping `tx` rolls back: nothing was written.
                    return Ok(Published::Refused);
                };
                let (node_id, created) = match (stored, create) {
                    (Some((node_id, _)), _) => (node_id, false),
                    (None, None) => return Ok(Published::NoSuchNode),
                    (None, Some(config)) => {
                        if !Self::room_for_a_node(&mut tx, service.name, max_nodes).await? {
                            return Ok(Published::TooManyNodes);
                        }
                        let id = Self::insert_node(&mut tx, service.name, account, node, &config)
                            .await?;
                        (id, true)
                    }
                };
                if let Some(keep) = keep {
                    let seq: i64 = sqlx::query_scalar(NEXT_SEQ.$dialect())
                        .bind(node_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(PUT_ITEM.$dialect())
                        .bind(node_id)
                        .bind(&item.id)
                        .bind(&item.publisher)
                        .bind(&item.payload)
                        .bind(item.published_at)
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                    Self::trim(&mut tx, node_id, keep).await?;
                    // Counted after the trim: a replaced item or a full node's oldest
                    // dropped leaves the count where it was. A service without a
                    // limit (`u64::MAX`) is not counted at all.
                    if max_service_items < u64::MAX {
                        let items: i64 = sqlx::query_scalar(ITEM_COUNT.$dialect())
                            .bind(service.name)
                            .fetch_one(&mut *tx)
                            .await?;
                        if count_from_db(items) > max_service_items {
                            return Ok(Published::TooManyItems);
                        }
                    }
                }
                tx.commit().await?;
                Ok(Published::Done { created })
            }

            async fn retract_pubsub_items(
                &self,
                service: &str,
                node: &str,
                ids: &[String],
            ) -> Result<Option<Vec<String>>, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some((node_id, _)) = Self::node_for_write(&mut tx, service, node).await? else {
                    return Ok(None);
                };
                let mut removed = Vec::new();
                for id in ids {
                    let done = sqlx::query(RETRACT.$dialect())
                        .bind(node_id)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() > 0 {
                        removed.push(id.clone());
                    }
                }
                tx.commit().await?;
                Ok(Some(removed))
            }

            async fn expire_pubsub_items(
                &self,
                service: &str,
                node: &str,
                published_before: i64,
            ) -> Result<Option<u64>, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some((node_id, _)) = Self::node_for_write(&mut tx, service, node).await? else {
                    return Ok(None);
                };
                let done = sqlx::query(EXPIRE.$dialect())
                    .bind(node_id)
                    .bind(published_before)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(done.rows_affected()))
            }

            async fn pubsub_items(
                &self,
                service: &str,
                node: &str,
                wanted: ItemsWanted<'_>,
            ) -> Result<Option<NodeItems>, StoreError> {
                let mut conn = self.reader().await?;
                let node_row: Option<(i64, String)> = sqlx::query_as(NODE_WITH_ID.$dialect())
                    .bind(service)
                    .bind(node)
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some((node_id, config)) = node_row else {
                    return Ok(None);
                };
                let items = match wanted {
                    ItemsWanted::Newest(n) => {
                        let rows: Vec<ItemRow> = sqlx::query_as(NEWEST.$dialect())
                            .bind(node_id)
                            .bind(to_db(n))
                            .fetch_all(&mut *conn)
                            .await?;
                        rows.into_iter().rev().map(item_from_row).collect()
                    }
                    ItemsWanted::Ids(ids) => {
                        let mut items = Vec::with_capacity(ids.len());
                        for id in ids {
                            let row: Option<ItemRow> = sqlx::query_as(ITEM.$dialect())
                                .bind(node_id)
                                .bind(id)
                                .fetch_optional(&mut *conn)
                                .await?;
                            items.extend(row.map(item_from_row));
                        }
                        items
                    }
                };
                Ok(Some(NodeItems { config, items }))
            }

            async fn pubsub_affiliations(
                &self,
                service: &str,
                node: &str,
            ) -> Result<Option<Vec<(String, String)>>, StoreError> {
                let mut conn = self.reader().await?;
                let node_row: Option<(i64, String)> = sqlx::query_as(NODE_WITH_ID.$dialect())
                    .bind(service)
                    .bind(node)
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some((node_id, _)) = node_row else {
                    return Ok(None);
                };
                Ok(Some(
                    sqlx::query_as(AFFILIATIONS.$dialect())
                        .bind(node_id)
                        .fetch_all(&mut *conn)
                        .await?,
                ))
            }

            async fn pubsub_affiliations_of(
                &self,
                service: &str,
                jid: &str,
            ) -> Result<Vec<(String, String)>, StoreError> {
                Ok(sqlx::query_as(AFFILIATIONS_OF.$dialect())
                    .bind(service)
                    .bind(jid)
                    .fetch_all(&mut *self.reader().await?)
                    .await?)
            }

            async fn set_pubsub_affiliations(
                &self,
                service: &str,
                node: &str,
                changes: &[(String, Option<String>)],
                unsubscribing: &[&str],
                check: &mut AffiliationCheck<'_>,
            ) -> Result<Option<bool>, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some((node_id, _)) = Self::node_for_write(&mut tx, service, node).await? else {
                    return Ok(None);
                };
                for (jid, affiliation) in changes {
                    match affiliation {
                        Some(affiliation) => {
                            sqlx::query(PUT_AFFILIATION.$dialect())
                                .bind(node_id)
                                .bind(jid)
                                .bind(affiliation)
                                .execute(&mut *tx)
                                .await?;
                            if unsubscribing.contains(&affiliation.as_str()) {
                                sqlx::query(REMOVE_SUBSCRIPTIONS_OF.$dialect())
                                    .bind(node_id)
                                    .bind(jid)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                        }
                        None => {
                            sqlx::query(REMOVE_AFFILIATION.$dialect())
                                .bind(node_id)
                                .bind(jid)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                let after: Vec<(String, String)> = sqlx::query_as(AFFILIATIONS.$dialect())
                    .bind(node_id)
                    .fetch_all(&mut *tx)
                    .await?;
                if !check(&after) {
                    // Dropping `tx` rolls back: nothing was written.
                    return Ok(Some(false));
                }
                tx.commit().await?;
                Ok(Some(true))
            }

            async fn pubsub_subscriptions(
                &self,
                service: &str,
                node: &str,
            ) -> Result<Option<Vec<StoredSubscription>>, StoreError> {
                let mut conn = self.reader().await?;
                let node_row: Option<(i64, String)> = sqlx::query_as(NODE_WITH_ID.$dialect())
                    .bind(service)
                    .bind(node)
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some((node_id, _)) = node_row else {
                    return Ok(None);
                };
                let rows: Vec<SubscriptionRow> = sqlx::query_as(SUBSCRIPTIONS.$dialect())
                    .bind(node_id)
                    .fetch_all(&mut *conn)
                    .await?;
                Ok(Some(rows.into_iter().map(subscription_from_row).collect()))
            }

            async fn pubsub_subscriptions_of(
                &self,
                service: &str,
                bare: &str,
            ) -> Result<Vec<(String, StoredSubscription)>, StoreError> {
                let rows: Vec<(String, String, String, String, bool)> =
                    sqlx::query_as(SUBSCRIPTIONS_OF.$dialect())
                        .bind(service)
                        .bind(bare)
                        .fetch_all(&mut *self.reader().await?)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(node, jid, subid, options, pending)| {
                        (node, subscription_from_row((jid, subid, options, pending)))
                    })
                    .collect())
            }

            async fn put_pubsub_subscription(
                &self,
                service: &str,
                node: &str,
                bare: &str,
                subscription: &StoredSubscription,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some((node_id, _)) = Self::node_for_write(&mut tx, service, node).await? else {
                    return Ok(false);
                };
                sqlx::query(PUT_SUBSCRIPTION.$dialect())
                    .bind(node_id)
                    .bind(&subscription.jid)
                    .bind(bare)
                    .bind(&subscription.subid)
                    .bind(&subscription.options)
                    .bind(subscription.pending)
                    .bind(unix_now())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn remove_pubsub_subscriptions(
                &self,
                service: &str,
                node: &str,
                which: Subscribers<'_>,
            ) -> Result<Option<Vec<String>>, StoreError> {
                let mut tx = self.begin_write().await?;
                let Some((node_id, _)) = Self::node_for_write(&mut tx, service, node).await? else {
                    return Ok(None);
                };
                let (statement, jid) = match which {
                    Subscribers::Jid(jid) => (&REMOVE_SUBSCRIPTION, jid),
                    Subscribers::Bare(bare) => (&REMOVE_SUBSCRIPTIONS_OF, bare),
                };
                let removed: Vec<String> = sqlx::query_scalar(statement.$dialect())
                    .bind(node_id)
                    .bind(jid)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(removed))
            }

            async fn pubsub_last_items(
                &self,
                service: &str,
            ) -> Result<Vec<(StoredNode, Option<StoredItem>)>, StoreError> {
                let rows: Vec<LastItemRow> = sqlx::query_as(LAST_ITEMS.$dialect())
                    .bind(service)
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                Ok(rows.into_iter().map(last_item_from_row).collect())
            }

            async fn pep_last_items_shared_with(
                &self,
                contact: &str,
            ) -> Result<Vec<(String, StoredNode, StoredItem)>, StoreError> {
                let rows: Vec<(String, String, String, String, String, String, i64)> =
                    sqlx::query_as(SHARED_LAST_ITEMS.$dialect())
                        .bind(contact)
                        .fetch_all(&mut *self.reader().await?)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(service, node, config, id, publisher, payload, published_at)| {
                            (
                                service,
                                StoredNode { node, config },
                                StoredItem {
                                    id,
                                    publisher,
                                    payload,
                                    published_at,
                                },
                            )
                        },
                    )
                    .collect())
            }
        }
    };
}

pubsub_store!(SqliteStore, sqlx::Sqlite, sqlite);
pubsub_store!(PostgresStore, sqlx::Postgres, postgres);
