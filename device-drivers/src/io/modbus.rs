//! Modbus TCP remote I/O: the lane's pins live on an I/O module reached over the network.
//!
//! [`ModbusImage`] is the process image of one module: every scan cycle it reads the
//! discrete inputs (`read_discrete_inputs(0, inputs)`) and writes the coils
//! (`write_multiple_coils(0, outputs)`), each request bounded by a timeout. The pins
//! handed out by [`ModbusImage::input_pins`] / [`ModbusImage::output_pins`] are
//! embedded-hal 1.0 [`InputPin`] / [`OutputPin`]s backed by that image, so the scan
//! cycle logic is the same as for GPIO.
//!
//! A lost connection, a timeout or an exception response is a [`DeviceFault`]; the image
//! is then marked invalid (input pins answer an error rather than stale levels) and the
//! next exchange reconnects, with an exponential backoff between attempts.
//!
//! The register map (discrete input address = input index, coil address = output index)
//! is documented in `docs/io.md`.

use super::ProcessImage;
use crate::devices::{DeviceFault, DeviceFuture, FaultKind};
use embedded_hal::digital::{self, ErrorKind, ErrorType, InputPin, OutputPin};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::Slave;

/// Where and how to reach a Modbus TCP I/O module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModbusConfig {
    /// `HOST:PORT` of the module.
    pub address: String,
    /// Modbus unit (slave) id; 1 unless the module is behind a gateway.
    pub unit_id: u8,
    /// Bound on each request (and on connecting).
    pub timeout: Duration,
    /// Discrete inputs read per cycle, from address 0.
    pub inputs: u16,
    /// Coils written per cycle, from address 0.
    pub outputs: u16,
    /// First wait before reconnecting after a failure; doubled up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

impl ModbusConfig {
    /// The reference lane module at `address`: unit 1, 200 ms timeout, 16 inputs, 9 coils.
    pub fn new(address: impl Into<String>) -> ModbusConfig {
        ModbusConfig {
            address: address.into(),
            unit_id: 1,
            timeout: Duration::from_millis(200),
            inputs: 16,
            outputs: 9,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

#[derive(Debug)]
struct Image {
    inputs: Vec<bool>,
    outputs: Vec<bool>,
    /// Whether `inputs` reflect the module (false before the first read and after a fault).
    valid: bool,
}

type SharedImage = Arc<Mutex<Image>>;

fn lock(m: &Mutex<Image>) -> MutexGuard<'_, Image> {
    // The image is plain data; a panic elsewhere cannot leave it inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process image of one Modbus TCP I/O module, with its connection.
pub struct ModbusImage {
    cfg: ModbusConfig,
    image: SharedImage,
    ctx: Option<Context>,
    /// No reconnection attempt before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl fmt::Debug for ModbusImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModbusImage")
            .field("cfg", &self.cfg)
            .field("connected", &self.ctx.is_some())
            .finish()
    }
}

impl ModbusImage {
    /// An image for the module in `cfg`, not connected yet (the first exchange connects).
    pub fn new(cfg: ModbusConfig) -> ModbusImage {
        let image = Image {
            inputs: vec![false; usize::from(cfg.inputs)],
            outputs: vec![false; usize::from(cfg.outputs)],
            valid: false,
        };
        let backoff = cfg.min_backoff;
        ModbusImage {
            cfg,
            image: Arc::new(Mutex::new(image)),
            ctx: None,
            retry_at: None,
            backoff,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &ModbusConfig {
        &self.cfg
    }

    /// Whether a connection to the module is open.
    pub fn is_connected(&self) -> bool {
        self.ctx.is_some()
    }

    /// One input pin per discrete input, indexed by address.
    pub fn input_pins(&self) -> Vec<ModbusInputPin> {
        (0..usize::from(self.cfg.inputs))
            .map(|index| ModbusInputPin {
                image: self.image.clone(),
                index,
            })
            .collect()
    }

    /// One output pin per coil, indexed by address.
    pub fn output_pins(&self) -> Vec<ModbusOutputPin> {
        (0..usize::from(self.cfg.outputs))
            .map(|index| ModbusOutputPin {
                image: self.image.clone(),
                index,
            })
            .collect()
    }

    fn fail(&mut self, fault: DeviceFault, drop_link: bool) -> DeviceFault {
        lock(&self.image).valid = false;
        if drop_link {
            self.ctx = None;
            self.retry_at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(self.cfg.max_backoff);
        }
        fault
    }

    /// The open connection, connecting first if the backoff allows it.
    async fn connection(&mut self) -> Result<&mut Context, DeviceFault> {
        if self.ctx.is_none() {
            if let Some(at) = self.retry_at {
                let now = Instant::now();
                if now < at {
                    return Err(DeviceFault::new(
                        FaultKind::Link,
                        format!(
                            "Modbus module {} unreachable; next attempt in {} ms",
                            self.cfg.address,
                            (at - now).as_millis()
                        ),
                    ));
                }
            }
            let cfg = self.cfg.clone();
            match connect(&cfg).await {
                Ok(ctx) => self.ctx = Some(ctx),
                Err(f) => return Err(self.fail(f, true)),
            }
        }
        self.ctx
            .as_mut()
            .ok_or_else(|| DeviceFault::new(FaultKind::Link, "Modbus connection not open"))
    }

    fn succeeded(&mut self) {
        self.retry_at = None;
        self.backoff = self.cfg.min_backoff;
    }
}

/// Opens a connection to the module of `cfg`, within its timeout.
async fn connect(cfg: &ModbusConfig) -> Result<Context, DeviceFault> {
    let addr = &cfg.address;
    let t = cfg.timeout;
    let attempt = async {
        let target = tokio::net::lookup_host(addr.as_str())
            .await
            .map_err(|e| {
                DeviceFault::new(
                    FaultKind::Unavailable,
                    format!("Modbus address {addr}: {e}"),
                )
            })?
            .next()
            .ok_or_else(|| {
                DeviceFault::new(
                    FaultKind::Unavailable,
                    format!("Modbus address {addr} resolves to nothing"),
                )
            })?;
        tokio_modbus::client::tcp::connect_slave(target, Slave(cfg.unit_id))
            .await
            .map_err(|e| DeviceFault::new(FaultKind::Link, format!("connecting to {addr}: {e}")))
    };
    match tokio::time::timeout(t, attempt).await {
        Ok(r) => r,
        Err(_) => Err(DeviceFault::new(
            FaultKind::Timeout,
            format!(
                "connecting to {addr}: no answer within {} ms",
                t.as_millis()
            ),
        )),
    }
}

/// What one request came back with, sorted for the fault report.
enum Outcome<T> {
    Ok(T),
    /// The module answered with an exception: the link works, the request was refused.
    Exception(String),
    /// Transport broken or protocol confused: drop the connection.
    Broken(DeviceFault),
}

async fn request<T, F>(what: &str, addr: &str, t: Duration, fut: F) -> Outcome<T>
where
    F: std::future::Future<Output = tokio_modbus::Result<T>>,
{
    match tokio::time::timeout(t, fut).await {
        Ok(Ok(Ok(v))) => Outcome::Ok(v),
        Ok(Ok(Err(code))) => Outcome::Exception(format!(
            "Modbus module {addr} refused {what}: exception {code:?}"
        )),
        Ok(Err(tokio_modbus::Error::Transport(e))) => Outcome::Broken(DeviceFault::new(
            FaultKind::Link,
            format!("Modbus link to {addr} lost during {what}: {e}"),
        )),
        Ok(Err(tokio_modbus::Error::Protocol(e))) => Outcome::Broken(DeviceFault::new(
            FaultKind::Protocol,
            format!("Modbus module {addr} answered {what} wrongly: {e}"),
        )),
        // A late answer would desynchronise the transaction ids: start afresh.
        Err(_) => Outcome::Broken(DeviceFault::new(
            FaultKind::Timeout,
            format!(
                "Modbus module {addr} did not answer {what} within {} ms",
                t.as_millis()
            ),
        )),
    }
}

impl ProcessImage for ModbusImage {
    fn read_inputs(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            let (n, t) = (self.cfg.inputs, self.cfg.timeout);
            let addr = self.cfg.address.clone();
            let ctx = self.connection().await?;
            let what = format!("read_discrete_inputs(0, {n})");
            match request(&what, &addr, t, ctx.read_discrete_inputs(0, n)).await {
                Outcome::Ok(bits) if bits.len() >= usize::from(n) => {
                    let mut img = lock(&self.image);
                    img.inputs.copy_from_slice(&bits[..usize::from(n)]);
                    img.valid = true;
                    drop(img);
                    self.succeeded();
                    Ok(())
                }
                Outcome::Ok(bits) => {
                    let f = DeviceFault::new(
                        FaultKind::Protocol,
                        format!("Modbus module {addr} sent {} of {n} inputs", bits.len()),
                    );
                    Err(self.fail(f, true))
                }
                Outcome::Exception(detail) => {
                    Err(self.fail(DeviceFault::new(FaultKind::Hardware, detail), false))
                }
                Outcome::Broken(f) => Err(self.fail(f, true)),
            }
        })
    }

    fn write_outputs(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            let t = self.cfg.timeout;
            let addr = self.cfg.address.clone();
            let coils = lock(&self.image).outputs.clone();
            let ctx = self.connection().await?;
            let what = format!("write_multiple_coils(0, {} coils)", coils.len());
            match request(&what, &addr, t, ctx.write_multiple_coils(0, &coils)).await {
                Outcome::Ok(()) => {
                    self.succeeded();
                    Ok(())
                }
                Outcome::Exception(detail) => {
                    Err(self.fail(DeviceFault::new(FaultKind::Hardware, detail), false))
                }
                Outcome::Broken(f) => Err(self.fail(f, true)),
            }
        })
    }
}

/// A pin error: the image holds no current reading of the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Modbus input image is not current (link down or not read yet)")]
pub struct StaleImage;

impl digital::Error for StaleImage {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// A discrete input of a [`ModbusImage`], read from the last successful exchange.
#[derive(Clone, Debug)]
pub struct ModbusInputPin {
    image: SharedImage,
    index: usize,
}

impl ModbusInputPin {
    /// The discrete input address.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl ErrorType for ModbusInputPin {
    type Error = StaleImage;
}

impl InputPin for ModbusInputPin {
    fn is_high(&mut self) -> Result<bool, StaleImage> {
        let img = lock(&self.image);
        if !img.valid {
            return Err(StaleImage);
        }
        img.inputs.get(self.index).copied().ok_or(StaleImage)
    }

    fn is_low(&mut self) -> Result<bool, StaleImage> {
        self.is_high().map(|h| !h)
    }
}

/// A coil of a [`ModbusImage`], sent to the module with the next exchange.
#[derive(Clone, Debug)]
pub struct ModbusOutputPin {
    image: SharedImage,
    index: usize,
}

impl ModbusOutputPin {
    /// The coil address.
    pub fn index(&self) -> usize {
        self.index
    }

    fn set(&mut self, level: bool) {
        if let Some(c) = lock(&self.image).outputs.get_mut(self.index) {
            *c = level;
        }
    }
}

impl ErrorType for ModbusOutputPin {
    type Error = core::convert::Infallible;
}

impl OutputPin for ModbusOutputPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.set(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.set(true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::future;
    use std::net::SocketAddr;
    use tokio::net::TcpListener;
    use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
    use tokio_modbus::server::Service;
    use tokio_modbus::{ExceptionCode, Request, Response};

    /// A module with `inputs.len()` discrete inputs and `coils.len()` coils.
    #[derive(Clone)]
    struct Module {
        inputs: Arc<Mutex<Vec<bool>>>,
        coils: Arc<Mutex<Vec<bool>>>,
    }

    impl Service for Module {
        type Request = Request<'static>;
        type Response = Response;
        type Exception = ExceptionCode;
        type Future = future::Ready<Result<Response, ExceptionCode>>;

        fn call(&self, req: Request<'static>) -> Self::Future {
            let range = |a: u16, n: usize, len: usize| {
                let a = usize::from(a);
                (a + n <= len).then_some(a..a + n)
            };
            let r = match req {
                Request::ReadDiscreteInputs(a, n) => {
                    let i = self.inputs.lock().unwrap();
                    match range(a, usize::from(n), i.len()) {
                        Some(r) => Ok(Response::ReadDiscreteInputs(i[r].to_vec())),
                        None => Err(ExceptionCode::IllegalDataAddress),
                    }
                }
                Request::WriteMultipleCoils(a, bits) => {
                    let mut c = self.coils.lock().unwrap();
                    let bits: Cow<'_, [bool]> = bits;
                    match range(a, bits.len(), c.len()) {
                        Some(r) => {
                            c[r].copy_from_slice(&bits);
                            Ok(Response::WriteMultipleCoils(a, bits.len() as u16))
                        }
                        None => Err(ExceptionCode::IllegalDataAddress),
                    }
                }
                _ => Err(ExceptionCode::IllegalFunction),
            };
            future::ready(r)
        }
    }

    fn module(inputs: usize, coils: usize) -> Module {
        Module {
            inputs: Arc::new(Mutex::new(vec![false; inputs])),
            coils: Arc::new(Mutex::new(vec![false; coils])),
        }
    }

    /// Serves `m` on `listener` until the returned task is aborted.
    fn serve(listener: TcpListener, m: Module) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let server = Server::new(listener);
            let new_service = |_addr: SocketAddr| Ok(Some(m.clone()));
            let on_connected =
                |stream, addr| async move { accept_tcp_connection(stream, addr, &new_service) };
            let _ = server.serve(&on_connected, |_e| {}).await;
        })
    }

    async fn start(m: Module) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        (addr, serve(l, m))
    }

    fn cfg(addr: SocketAddr) -> ModbusConfig {
        ModbusConfig {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            ..ModbusConfig::new(addr.to_string())
        }
    }

    #[tokio::test]
    async fn inputs_and_coils_travel_over_tcp() {
        let m = module(16, 9);
        m.inputs.lock().unwrap()[12] = true;
        m.inputs.lock().unwrap()[6] = true;
        let (addr, server) = start(m.clone()).await;
        let mut img = ModbusImage::new(cfg(addr));
        let mut ins = img.input_pins();
        let mut outs = img.output_pins();
        assert_eq!((ins.len(), outs.len()), (16, 9));
        // Nothing read yet: the pins refuse to make levels up.
        assert_eq!(ins[12].is_high(), Err(StaleImage));
        img.read_inputs().await.unwrap();
        assert!(ins[12].is_high().unwrap());
        assert!(ins[6].is_high().unwrap());
        assert!(ins[0].is_low().unwrap());
        outs[0].set_high().unwrap();
        outs[8].set_high().unwrap();
        img.write_outputs().await.unwrap();
        let coils = m.coils.lock().unwrap().clone();
        assert_eq!(
            coils,
            [true, false, false, false, false, false, false, false, true]
        );
        // A change on the module shows after the next read only.
        m.inputs.lock().unwrap()[6] = false;
        assert!(ins[6].is_high().unwrap());
        img.read_inputs().await.unwrap();
        assert!(ins[6].is_low().unwrap());
        server.abort();
    }

    #[tokio::test]
    async fn exception_response_is_a_fault_not_a_panic() {
        // A module with too few inputs answers "illegal data address".
        let (addr, server) = start(module(8, 9)).await;
        let mut img = ModbusImage::new(cfg(addr));
        let mut pin = img.input_pins().remove(0);
        let f = img.read_inputs().await.unwrap_err();
        assert_eq!(f.kind, FaultKind::Hardware);
        assert!(f.detail.contains("IllegalDataAddress"), "{f}");
        assert_eq!(pin.is_high(), Err(StaleImage));
        // The link itself is fine: writes still work.
        assert!(img.is_connected());
        img.write_outputs().await.unwrap();
        server.abort();
    }

    #[tokio::test]
    async fn silent_module_times_out() {
        // Accepts connections but never answers.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let mut img = ModbusImage::new(cfg(addr));
        let t0 = std::time::Instant::now();
        let f = img.read_inputs().await.unwrap_err();
        let took = t0.elapsed();
        assert_eq!(f.kind, FaultKind::Timeout, "{f}");
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_millis(1000),
            "{took:?}"
        );
        assert!(!img.is_connected());
        hold.abort();
    }

    #[tokio::test]
    async fn link_loss_faults_then_reconnects_with_backoff() {
        let m = module(16, 9);
        m.inputs.lock().unwrap()[3] = true;
        let (addr, server) = start(m.clone()).await;
        let mut img = ModbusImage::new(cfg(addr));
        let mut pin = img.input_pins().remove(3);
        img.read_inputs().await.unwrap();
        assert!(pin.is_high().unwrap());

        // The module goes away (connection task and listener).
        server.abort();
        let _ = server.await;
        let mut first = None;
        for _ in 0..20 {
            match img.read_inputs().await {
                Err(f) => {
                    first = Some(f);
                    break;
                }
                // The old connection task may linger a moment after the abort.
                Ok(()) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let f = first.expect("no fault after the module went away");
        assert!(
            matches!(f.kind, FaultKind::Link | FaultKind::Timeout),
            "{f}"
        );
        assert_eq!(pin.is_high(), Err(StaleImage));
        // Within the backoff no connection is attempted.
        let f = img.read_inputs().await.unwrap_err();
        assert_eq!(f.kind, FaultKind::Link);

        // The module comes back on the same port: the image recovers by itself.
        let l = TcpListener::bind(addr).await.unwrap();
        let server = serve(l, m.clone());
        let t0 = std::time::Instant::now();
        loop {
            if img.read_inputs().await.is_ok() {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(3), "did not reconnect");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(pin.is_high().unwrap());
        server.abort();
    }

    #[tokio::test]
    async fn unresolvable_address_is_a_fault() {
        let mut img = ModbusImage::new(ModbusConfig::new("no-such-host.invalid:502"));
        let f = img.read_inputs().await.unwrap_err();
        assert!(
            matches!(f.kind, FaultKind::Unavailable | FaultKind::Timeout),
            "{f}"
        );
    }
}
