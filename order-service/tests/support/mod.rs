//! order-service and wallet-service of their own for each test, on a fresh vhost and fresh
//! databases. Either can be crashed and started again while the other keeps going.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use platform::config::ServiceSettings;
use platform::grpc::{InternalToken, WithInternalToken, channel};
use platform::shutdown::CancellationToken;
use platform::telemetry::LogFormat;
use platform::testing::{Vhost, database_url, eventually, terminate_database_sessions, unique_id};
use proto::order::v1 as order_pb;
use proto::order::v1::order_service_client::OrderServiceClient;
use proto::wallet::v1 as wallet_pb;
use proto::wallet::v1::wallet_service_client::WalletServiceClient;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

pub type Authenticated = InterceptedService<Channel, WithInternalToken>;

struct Running {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

pub struct Services {
    id: String,
    pub vhost: Vhost,
    wallet_config: wallet_service::Config,
    order_config: order_service::Config,
    pub wallet: WalletServiceClient<Authenticated>,
    pub orders: OrderServiceClient<Authenticated>,
    pub wallet_pool: PgPool,
    pub order_pool: PgPool,
    wallet_running: Option<Running>,
    order_running: Option<Running>,
}

impl Services {
    /// Starts order-service with `payment_timeout`, and wallet-service too when `with_wallet`
    /// (its database is created either way).
    pub async fn start(payment_timeout: Duration, with_wallet: bool) -> Self {
        let id = unique_id();
        let vhost = Vhost::create(&format!("t_{id}")).await.unwrap();
        let token = InternalToken::generate();
        let settings = |name: &str| ServiceSettings {
            database_url: database_url(&format!("t_{id}_{name}")),
            database_max_connections: 8,
            grpc_addr: ([127, 0, 0, 1], 0).into(),
            amqp_url: vhost.amqp_url.clone(),
            internal_token: token.clone(),
            log_format: LogFormat::Text,
            shutdown_grace: Duration::from_secs(10),
            // No poll: a commit that forgets to wake the outbox relay makes the test time out.
            outbox_poll: Duration::from_secs(3600),
        };
        let mut wallet_config = wallet_service::Config {
            service: settings("wallet"),
            group_commit: wallet_service::group_commit::Settings::default(),
        };
        let mut order_config = order_service::Config {
            service: settings("orders"),
            payment_timeout,
        };
        let wallet_listener = TcpListener::bind(wallet_config.service.grpc_addr)
            .await
            .unwrap();
        let order_listener = TcpListener::bind(order_config.service.grpc_addr)
            .await
            .unwrap();
        // Restarts listen where the clients dial.
        wallet_config.service.grpc_addr = wallet_listener.local_addr().unwrap();
        order_config.service.grpc_addr = order_listener.local_addr().unwrap();
        let dial = |addr: SocketAddr| {
            InterceptedService::new(
                channel(&addr.to_string(), Duration::from_secs(10)),
                WithInternalToken::new(token.clone()),
            )
        };
        let wallet_app = wallet_service::build(wallet_config.clone(), wallet_listener)
            .await
            .unwrap();
        let order_app = order_service::build(order_config.clone(), order_listener)
            .await
            .unwrap();
        let connect =
            |url: &secrecy::SecretString| PgPool::connect_lazy(url.expose_secret()).unwrap();
        let mut services = Self {
            wallet: WalletServiceClient::new(dial(wallet_config.service.grpc_addr)),
            orders: OrderServiceClient::new(dial(order_config.service.grpc_addr)),
            wallet_pool: connect(&wallet_config.service.database_url),
            order_pool: connect(&order_config.service.database_url),
            wallet_config,
            order_config,
            vhost,
            wallet_running: None,
            order_running: None,
            id,
        };
        let stop = CancellationToken::new();
        services.order_running = Some(Running {
            task: tokio::spawn(order_app.run_until_stopped(stop.clone())),
            stop,
        });
        if with_wallet {
            let stop = CancellationToken::new();
            services.wallet_running = Some(Running {
                task: tokio::spawn(wallet_app.run_until_stopped(stop.clone())),
                stop,
            });
        }
        // Messages published to a queue before it exists are dropped: wait for order-service's
        // topology.
        for queue in [
            "order.payment-outcomes",
            "order.voucher-issuing",
            "wallet.order-payments",
        ] {
            eventually(Duration::from_secs(10), "the order queues", || async {
                services.queue_exists(queue).await.then_some(())
            })
            .await;
        }
        services
    }

    pub async fn start_order_service(&mut self) {
        assert!(self.order_running.is_none(), "order-service runs already");
        let listener = bind(self.order_config.service.grpc_addr).await;
        let app = order_service::build(self.order_config.clone(), listener)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        self.order_running = Some(Running {
            task: tokio::spawn(app.run_until_stopped(stop.clone())),
            stop,
        });
    }

    pub async fn start_wallet_service(&mut self) {
        assert!(self.wallet_running.is_none(), "wallet-service runs already");
        let listener = bind(self.wallet_config.service.grpc_addr).await;
        let app = wallet_service::build(self.wallet_config.clone(), listener)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        self.wallet_running = Some(Running {
            task: tokio::spawn(app.run_until_stopped(stop.clone())),
            stop,
        });
    }

    /// Stops order-service as a crash would: its work is abandoned wherever it is, its
    /// database sessions are cut (rolling back what was not committed) and the broker closes
    /// its connection (redelivering what was not acknowledged).
    pub async fn crash_order_service(&mut self) {
        let running = self.order_running.take().expect("order-service runs");
        crash(
            running,
            &self.vhost,
            "order-service",
            &format!("t_{}_orders", self.id),
        )
        .await;
    }

    pub async fn crash_wallet_service(&mut self) {
        let running = self.wallet_running.take().expect("wallet-service runs");
        crash(
            running,
            &self.vhost,
            "wallet-service",
            &format!("t_{}_wallet", self.id),
        )
        .await;
    }

    pub async fn stop(mut self) {
        for running in [self.order_running.take(), self.wallet_running.take()]
            .into_iter()
            .flatten()
        {
            running.stop.cancel();
            let _ = running.task.await;
        }
        self.wallet_pool.close().await;
        self.order_pool.close().await;
        platform::database::drop_database(&self.wallet_config.service.database_url)
            .await
            .unwrap();
        platform::database::drop_database(&self.order_config.service.database_url)
            .await
            .unwrap();
        self.vhost.delete().await.unwrap();
    }

    pub async fn deposit(&self, user: Uuid, amount: i64) {
        self.wallet
            .clone()
            .create_transaction(wallet_pb::CreateTransactionRequest {
                user_id: user.to_string(),
                r#type: proto::TransactionType::Deposit.into(),
                amount: Some(amount),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    pub async fn place_order(
        &self,
        user: Uuid,
        unit_price: i64,
    ) -> Result<order_pb::Order, tonic::Status> {
        place_order(self.orders.clone(), user, unit_price).await
    }

    pub async fn order_status(&self, order: Uuid) -> String {
        sqlx::query_scalar("select status from orders where id = $1")
            .bind(order)
            .fetch_one(&self.order_pool)
            .await
            .unwrap()
    }

    /// Units of all products held by unpaid orders.
    pub async fn reserved_units(&self) -> i64 {
        sqlx::query_scalar("select coalesce(sum(reserved), 0)::bigint from products")
            .fetch_one(&self.order_pool)
            .await
            .unwrap()
    }

    /// A connection to this test's vhost and a channel on it with publisher confirms.
    pub async fn publisher(&self) -> (Connection, lapin::Channel) {
        let broker = Connection::connect(
            self.vhost.amqp_url.expose_secret(),
            ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let channel = broker.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        (broker, channel)
    }

    /// Asserts that the consumers still work: a fresh user's order is paid end to end.
    pub async fn assert_an_order_is_paid(&self, price: i64) {
        let user = Uuid::new_v4();
        self.deposit(user, price).await;
        let order = self.place_order(user, price).await.unwrap();
        let id: Uuid = order.id.parse().unwrap();
        eventually(Duration::from_secs(10), "the order to be paid", || async {
            (self.order_status(id).await == "paid").then_some(())
        })
        .await;
    }

    /// Messages waiting in `queue` (of this test's vhost).
    pub async fn queue_length(&self, queue: &str) -> u32 {
        let (broker, channel) = self.publisher().await;
        let length = platform::testing::poison::queue_length(&channel, queue).await;
        let _ = broker.close(200, "done".into()).await;
        length
    }

    pub async fn queue_exists(&self, queue: &str) -> bool {
        let (broker, _channel) = self.publisher().await;
        let exists = platform::testing::poison::queue_exists(&broker, queue).await;
        let _ = broker.close(200, "done".into()).await;
        exists
    }
}

async fn crash(running: Running, vhost: &Vhost, connection_name: &str, database: &str) {
    running.task.abort();
    // Tasks the service spawned stop at their next step instead of going on unsupervised.
    running.stop.cancel();
    let _ = running.task.await;
    vhost.close_connections(connection_name).await.unwrap();
    terminate_database_sessions(database).await.unwrap();
}

/// Binds `addr` again once the crashed process's listener has let go of it.
async fn bind(addr: SocketAddr) -> TcpListener {
    eventually(Duration::from_secs(10), "the port to be free", || async {
        TcpListener::bind(addr).await.ok()
    })
    .await
}

/// `CreateProduct` of a fresh seller's: `stock` units at `price`.
pub async fn create_product(
    mut orders: OrderServiceClient<Authenticated>,
    price: i64,
    stock: i64,
) -> order_pb::Product {
    orders
        .create_product(order_pb::CreateProductRequest {
            seller_id: Uuid::new_v4().to_string(),
            name: "Thing".into(),
            price,
            stock,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// `CreateOrder` of one unit of a new product priced `unit_price` (the catalogue sets the
/// price, so each order gets a product of its own).
pub async fn place_order(
    orders: OrderServiceClient<Authenticated>,
    user: Uuid,
    unit_price: i64,
) -> Result<order_pb::Order, tonic::Status> {
    let mut creating = orders.clone();
    let product = creating
        .create_product(order_pb::CreateProductRequest {
            seller_id: Uuid::new_v4().to_string(),
            name: "Thing".into(),
            price: unit_price,
            stock: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    order_product(orders, user, &product.id, 1).await
}

/// `CreateOrder` of `quantity` units of a product.
pub async fn order_product(
    mut orders: OrderServiceClient<Authenticated>,
    user: Uuid,
    product_id: &str,
    quantity: i64,
) -> Result<order_pb::Order, tonic::Status> {
    orders
        .create_order(order_pb::CreateOrderRequest {
            user_id: user.to_string(),
            lines: vec![order_pb::OrderLine {
                product_id: product_id.to_owned(),
                quantity,
            }],
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}
